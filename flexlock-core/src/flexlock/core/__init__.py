"""FlexLock core: run sheets, hashing, git capture, unsafe_debug and plugin discovery.

Imports stay cheap: `import flexlock.core` loads only the error classes; every
other public name is imported from its private module on first access
(PEP 562), so a script that only uses `runlock` never pays for `verify` or
`unsafe_debug`. Nothing is registered at import time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from flexlock.core._errors import (
    ConfigError,
    FlexLockError,
    GitError,
    HashError,
    LockFileError,
    PluginError,
    RunInProgressError,
    TaskFailedError,
    VerificationError,
)
from flexlock.core._version import __version__

if TYPE_CHECKING:
    from flexlock.core._debug import (
        debug_down,
        debug_exception,
        debug_frames,
        debug_up,
        load_debug_locals,
        save_failure_locals,
        unsafe_debug,
    )
    from flexlock.core._diff import RunDiff, diff_runs
    from flexlock.core._git import capture_repo
    from flexlock.core._hashing import available_algorithms, hash_path, tree_manifest
    from flexlock.core._lockfile import dump, dumps, load, loads
    from flexlock.core._model import (
        SCHEMA_VERSION,
        DataRecord,
        EnvRecord,
        ErrorRecord,
        PrevRecord,
        RepoRecord,
        RunLock,
        SkippedFile,
    )
    from flexlock.core._plugins import load_plugin, plugin_names
    from flexlock.core._registry import register_data, register_prev
    from flexlock.core._runlock import Run, compute_id, rerun_reason, runlock
    from flexlock.core._runs import find_runs
    from flexlock.core._verify import VerifyReport, verify

# public name -> private module that defines it
_LAZY = {
    **dict.fromkeys(
        [
            "debug_down",
            "debug_exception",
            "debug_frames",
            "debug_up",
            "load_debug_locals",
            "save_failure_locals",
            "tree_manifest",
            "unsafe_debug",
        ],
        "_debug",
    ),
    **dict.fromkeys(["RunDiff", "diff_runs"], "_diff"),
    "capture_repo": "_git",
    **dict.fromkeys(["available_algorithms", "hash_path", "tree_manifest"], "_hashing"),
    **dict.fromkeys(["dump", "dumps", "load", "loads"], "_lockfile"),
    **dict.fromkeys(
        [
            "SCHEMA_VERSION",
            "DataRecord",
            "EnvRecord",
            "ErrorRecord",
            "PrevRecord",
            "RepoRecord",
            "RunLock",
            "SkippedFile",
        ],
        "_model",
    ),
    **dict.fromkeys(["load_plugin", "plugin_names"], "_plugins"),
    **dict.fromkeys(["register_data", "register_prev"], "_registry"),
    **dict.fromkeys(["Run", "compute_id", "rerun_reason", "runlock"], "_runlock"),
    "find_runs": "_runs",
    **dict.fromkeys(["VerifyReport", "verify"], "_verify"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flexlock.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flexlock.core.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "SCHEMA_VERSION",
    "ConfigError",
    "DataRecord",
    "EnvRecord",
    "ErrorRecord",
    "FlexLockError",
    "GitError",
    "HashError",
    "LockFileError",
    "PluginError",
    "PrevRecord",
    "RepoRecord",
    "Run",
    "RunDiff",
    "RunInProgressError",
    "RunLock",
    "SkippedFile",
    "TaskFailedError",
    "VerificationError",
    "VerifyReport",
    "__version__",
    "available_algorithms",
    "capture_repo",
    "compute_id",
    "debug_down",
    "debug_exception",
    "debug_frames",
    "debug_up",
    "diff_runs",
    "dump",
    "dumps",
    "find_runs",
    "hash_path",
    "load",
    "load_debug_locals",
    "load_plugin",
    "loads",
    "plugin_names",
    "register_data",
    "register_prev",
    "rerun_reason",
    "runlock",
    "save_failure_locals",
    "tree_manifest",
    "unsafe_debug",
    "verify",
]
