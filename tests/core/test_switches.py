"""FLEXLOCK_TRACEBACK and FLEXLOCK_DEBUG: two switches, each read on its own."""

from __future__ import annotations

import pytest

from flexlock.core import debug_enabled, traceback_enabled


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("yes", True), ("0", False), ("off", False), ("false", False), ("", False)],
)
def test_traceback_enabled_reads_flexlock_traceback(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("FLEXLOCK_TRACEBACK", value)
    assert expected == traceback_enabled()


def test_traceback_is_off_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEXLOCK_TRACEBACK", raising=False)
    assert False is traceback_enabled()


def test_debug_mode_does_not_turn_tracebacks_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEXLOCK_TRACEBACK", raising=False)
    monkeypatch.setenv("FLEXLOCK_DEBUG", "1")
    assert (True, False) == (debug_enabled(), traceback_enabled())


def test_tracebacks_do_not_turn_the_debug_mode_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLOCK_TRACEBACK", "1")
    assert (False, True) == (debug_enabled(), traceback_enabled())
