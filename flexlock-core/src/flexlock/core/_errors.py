"""The exception hierarchy shared by every flexlock distribution.

Every error a user can cause is a `FlexLockError` whose message names the
thing (key, file:line, path, run) and the fix. Its `exit_code` follows
DESIGN.md §8: 1 the user's task failed, 2 usage/config/input, 3 verification.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FlexLockError",
    "GitError",
    "HashError",
    "LockFileError",
    "PluginError",
    "RunInProgressError",
    "TaskFailedError",
    "VerificationError",
]


class FlexLockError(Exception):
    """Base of every error flexlock raises on purpose; `exit_code` is what the CLI exits with."""

    exit_code: int = 2


class ConfigError(FlexLockError):
    """A config file, override, key or value is invalid."""


class PluginError(FlexLockError):
    """A plugin (executor, resolver, command) is unknown, missing or broken."""


class HashError(FlexLockError):
    """A data input cannot be hashed (missing, unreadable, symlink loop...)."""


class GitError(FlexLockError):
    """Code state cannot be captured (not a repo, git missing, merge in progress...)."""


class LockFileError(FlexLockError):
    """A run.lock cannot be read or written (bad YAML, newer schema, too large...)."""


class RunInProgressError(FlexLockError):
    """Another live run holds the save_dir."""


class VerificationError(FlexLockError):
    """Recorded and current state disagree (verify, pull)."""

    exit_code = 3


class TaskFailedError(FlexLockError):
    """The user's own code failed."""

    exit_code = 1
