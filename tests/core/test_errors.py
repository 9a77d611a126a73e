"""The error hierarchy: one root, the matching builtin, and the documented exit codes."""

from __future__ import annotations

import pytest

from flexlock import core


@pytest.mark.parametrize(
    ("error", "builtin", "exit_code"),
    [
        (core.ConfigError, ValueError, 2),
        (core.LockFileError, ValueError, 2),
        (core.HashError, ValueError, 2),
        (core.PluginError, LookupError, 2),
        (core.GitError, RuntimeError, 2),
        (core.RunInProgressError, RuntimeError, 2),
        (core.VerificationError, AssertionError, 3),
        (core.TransferError, ConnectionError, 4),
        (core.TaskFailedError, RuntimeError, 1),
    ],
)
def test_each_error_is_a_flexlock_error_and_its_builtin_with_its_exit_code(
    error: type[core.FlexLockError], builtin: type[Exception], exit_code: int
) -> None:
    raised = error("what went wrong and the fix")
    assert isinstance(raised, core.FlexLockError)
    assert isinstance(raised, builtin)
    assert exit_code == raised.exit_code
    assert "what went wrong and the fix" == str(raised)


def test_every_public_error_class_is_exported() -> None:
    from flexlock.core import _errors

    assert sorted(name for name in _errors.__all__ if not name.startswith("EXIT_")) == sorted(
        name
        for name in core.__all__
        if isinstance(getattr(core, name), type)
        and issubclass(getattr(core, name), Exception)
        and name.endswith("Error")
    )
