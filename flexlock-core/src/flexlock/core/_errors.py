"""The exception hierarchy shared by every flexlock distribution.

Every error a user can cause is a `FlexLockError` whose message names the
thing (key, file:line, path, run) and the fix. Its `exit_code` is what the
`flexlock` command and `@clicfg` scripts exit with (docs/cli.md, "Exit codes"):
1 the user's task failed, 2 usage/config/input, 3 verification, 4 transfer.

Each class also derives from the builtin a caller would catch without knowing
flexlock (`ConfigError` is a `ValueError`, `TransferError` a `ConnectionError`...),
as attrs' `FrozenError` is an `AttributeError`.
"""

from __future__ import annotations

__all__ = [
    "EXIT_INPUT",
    "EXIT_OK",
    "EXIT_TASK_FAILED",
    "EXIT_TRANSFER",
    "EXIT_VERIFY",
    "ConfigError",
    "FlexLockError",
    "GitError",
    "HashError",
    "LockFileError",
    "PluginError",
    "RunInProgressError",
    "TaskFailedError",
    "TransferError",
    "VerificationError",
]

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_INPUT = 2
EXIT_VERIFY = 3
EXIT_TRANSFER = 4


class FlexLockError(Exception):
    """Base of every error flexlock raises on purpose; `exit_code` is what the CLI exits with."""

    exit_code: int = EXIT_INPUT


class ConfigError(FlexLockError, ValueError):
    """A config file, override, key or value is invalid."""


class PluginError(FlexLockError, LookupError):
    """A plugin (executor, resolver, command) is unknown, missing or broken."""


class HashError(FlexLockError, ValueError):
    """A data input cannot be hashed (missing, unreadable, symlink loop...).

    A `ValueError` (a bad input), not an `OSError`: the hasher's own `except OSError`
    around file-system calls would otherwise catch and re-word it.
    """


class GitError(FlexLockError, RuntimeError):
    """Code state cannot be captured (not a repo, git missing, merge in progress...)."""


class LockFileError(FlexLockError, ValueError):
    """A run.lock cannot be read or written (bad YAML, newer schema, too large...)."""


class RunInProgressError(FlexLockError, RuntimeError):
    """Another live run holds the save_dir."""


class VerificationError(FlexLockError, AssertionError):
    """Recorded and current state disagree (verify, pull)."""

    exit_code = EXIT_VERIFY


class TransferError(FlexLockError, ConnectionError):
    """Copying code or data to or from a remote failed (git remote, rclone).

    Its own exit code lets a retry loop tell a flaky network from a usage error.
    """

    exit_code = EXIT_TRANSFER


class TaskFailedError(FlexLockError, RuntimeError):
    """The user's own code failed (a task list with failed tasks, a failed run)."""

    exit_code = EXIT_TASK_FAILED
