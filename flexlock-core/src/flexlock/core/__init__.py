"""FlexLock core: run sheets, hashing, git capture, unsafe_debug and plugin discovery.

Imports stay cheap: `import flexlock.core` loads only the error classes; every
other public name is imported from its private module on first access
(PEP 562), so a script that only uses `runlock` never pays for `verify` or
`unsafe_debug`. Nothing is registered at import time.

The names fall in two groups (docs/api.md): what a research script uses, and
what flexlock's other distributions and third-party executors build on. No
distribution imports another one's private modules.
"""

from __future__ import annotations

import importlib

from flexlock.core._errors import (
    ConfigError,
    FlexLockError,
    GitError,
    HashError,
    LockFileError,
    PluginError,
    RunInProgressError,
    TaskFailedError,
    TransferError,
    VerificationError,
)
from flexlock.core._version import __version__

# Not `from typing import TYPE_CHECKING`: importing typing costs a fifth of a bare
# interpreter's start, and nothing here needs it at run time (mypy reads the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from flexlock.core._debug import (
        debug_down,
        debug_exception,
        debug_frames,
        debug_up,
        unsafe_debug,
    )
    from flexlock.core._debug_store import load_debug_locals, read_debug_index, save_failure_locals
    from flexlock.core._diff import RunDiff, diff_runs
    from flexlock.core._diff_now import diff_current
    from flexlock.core._freshness import rerun_reason
    from flexlock.core._gather import RunOptions
    from flexlock.core._git import capture_repo, strip_credentials
    from flexlock.core._git_runner import git_environment, run_git
    from flexlock.core._git_snapshot import diff_trees
    from flexlock.core._hashcache import HashCacheWarning
    from flexlock.core._hashing import available_algorithms, hash_path, tree_manifest
    from flexlock.core._housekeeping import GcPlan, plan_gc
    from flexlock.core._identity import canonical_json, config_to_dict, to_plain
    from flexlock.core._layout import resolve_lock_path, working_directory
    from flexlock.core._lockfile import dump, dumps, load, loads, lock_path, write_atomic
    from flexlock.core._model import (
        SCHEMA_VERSION,
        AttemptRecord,
        DataRecord,
        EnvRecord,
        ErrorRecord,
        OutputRecord,
        PrevRecord,
        RepoRecord,
        RunLock,
        SkippedFile,
        Status,
    )
    from flexlock.core._plugins import iter_plugins, load_plugin, plugin_names
    from flexlock.core._recapture import clear_capture_cache
    from flexlock.core._registry import (
        Registered,
        clear_registered,
        register_data,
        register_output,
        register_prev,
        registered,
    )
    from flexlock.core._runlock import Run, compute_id, runlock
    from flexlock.core._runs import (
        RunSummary,
        SummaryCache,
        find_runs,
        is_missing,
        lookup,
        matches,
        read_summary,
    )
    from flexlock.core._savedir import (
        SaveDirLock,
        break_lock,
        lock_holder,
        mark_failed,
        preserve_previous,
    )
    from flexlock.core._sheet_data import load_plain
    from flexlock.core._show import (
        LineageNode,
        lineage,
        lineage_to_dot,
        lineage_to_mermaid,
        sheet_to_plain,
    )
    from flexlock.core._status import RunState, StaleReason, count_states, project_status
    from flexlock.core._switches import debug_enabled, traceback_enabled
    from flexlock.core._system import StatusLine, usable_cpus, utc_now
    from flexlock.core._verify import verify
    from flexlock.core._verify_report import CodeCheck, DataCheck, PrevCheck, VerifyReport
    from flexlock.core._yaml import load_yaml

# public name -> private module that defines it
_LAZY = {
    **dict.fromkeys(
        [
            "debug_down",
            "debug_exception",
            "debug_frames",
            "debug_up",
            "unsafe_debug",
        ],
        "_debug",
    ),
    **dict.fromkeys(
        ["load_debug_locals", "read_debug_index", "save_failure_locals"], "_debug_store"
    ),
    **dict.fromkeys(["RunDiff", "diff_runs"], "_diff"),
    "diff_current": "_diff_now",
    "rerun_reason": "_freshness",
    **dict.fromkeys(["capture_repo", "strip_credentials"], "_git"),
    "diff_trees": "_git_snapshot",
    **dict.fromkeys(["git_environment", "run_git"], "_git_runner"),
    "HashCacheWarning": "_hashcache",
    **dict.fromkeys(["available_algorithms", "hash_path", "tree_manifest"], "_hashing"),
    **dict.fromkeys(["canonical_json", "config_to_dict", "to_plain"], "_identity"),
    "resolve_lock_path": "_layout",
    "working_directory": "_layout",
    **dict.fromkeys(["dump", "dumps", "load", "loads", "lock_path", "write_atomic"], "_lockfile"),
    **dict.fromkeys(
        [
            "SCHEMA_VERSION",
            "AttemptRecord",
            "DataRecord",
            "EnvRecord",
            "ErrorRecord",
            "OutputRecord",
            "PrevRecord",
            "RepoRecord",
            "RunLock",
            "SkippedFile",
            "Status",
        ],
        "_model",
    ),
    **dict.fromkeys(["iter_plugins", "load_plugin", "plugin_names"], "_plugins"),
    "clear_capture_cache": "_recapture",
    **dict.fromkeys(
        [
            "Registered",
            "clear_registered",
            "register_data",
            "register_output",
            "register_prev",
            "registered",
        ],
        "_registry",
    ),
    **dict.fromkeys(["Run", "compute_id", "runlock"], "_runlock"),
    "RunOptions": "_gather",
    **dict.fromkeys(
        [
            "RunSummary",
            "SummaryCache",
            "find_runs",
            "is_missing",
            "lookup",
            "matches",
            "read_summary",
        ],
        "_runs",
    ),
    **dict.fromkeys(
        ["SaveDirLock", "break_lock", "lock_holder", "mark_failed", "preserve_previous"], "_savedir"
    ),
    **dict.fromkeys(["GcPlan", "plan_gc"], "_housekeeping"),
    "load_plain": "_sheet_data",
    **dict.fromkeys(["RunState", "StaleReason", "count_states", "project_status"], "_status"),
    **dict.fromkeys(
        ["LineageNode", "lineage", "lineage_to_dot", "lineage_to_mermaid", "sheet_to_plain"],
        "_show",
    ),
    **dict.fromkeys(["debug_enabled", "traceback_enabled"], "_switches"),
    **dict.fromkeys(["StatusLine", "usable_cpus", "utc_now"], "_system"),
    **dict.fromkeys(["CodeCheck", "DataCheck", "PrevCheck", "VerifyReport"], "_verify_report"),
    "verify": "_verify",
    "load_yaml": "_yaml",
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
    "AttemptRecord",
    "CodeCheck",
    "ConfigError",
    "DataCheck",
    "DataRecord",
    "EnvRecord",
    "ErrorRecord",
    "FlexLockError",
    "GcPlan",
    "GitError",
    "HashCacheWarning",
    "HashError",
    "LineageNode",
    "LockFileError",
    "OutputRecord",
    "PluginError",
    "PrevCheck",
    "PrevRecord",
    "Registered",
    "RepoRecord",
    "Run",
    "RunDiff",
    "RunInProgressError",
    "RunLock",
    "RunOptions",
    "RunState",
    "RunSummary",
    "SaveDirLock",
    "SkippedFile",
    "StaleReason",
    "Status",
    "StatusLine",
    "SummaryCache",
    "TaskFailedError",
    "TransferError",
    "VerificationError",
    "VerifyReport",
    "__version__",
    "available_algorithms",
    "break_lock",
    "canonical_json",
    "capture_repo",
    "clear_capture_cache",
    "clear_registered",
    "compute_id",
    "config_to_dict",
    "count_states",
    "debug_down",
    "debug_enabled",
    "debug_exception",
    "debug_frames",
    "debug_up",
    "diff_current",
    "diff_runs",
    "diff_trees",
    "dump",
    "dumps",
    "find_runs",
    "git_environment",
    "hash_path",
    "is_missing",
    "iter_plugins",
    "lineage",
    "lineage_to_dot",
    "lineage_to_mermaid",
    "load",
    "load_debug_locals",
    "load_plain",
    "load_plugin",
    "load_yaml",
    "loads",
    "lock_holder",
    "lock_path",
    "lookup",
    "mark_failed",
    "matches",
    "plan_gc",
    "plugin_names",
    "preserve_previous",
    "project_status",
    "read_debug_index",
    "read_summary",
    "register_data",
    "register_output",
    "register_prev",
    "registered",
    "rerun_reason",
    "resolve_lock_path",
    "run_git",
    "runlock",
    "save_failure_locals",
    "sheet_to_plain",
    "strip_credentials",
    "to_plain",
    "traceback_enabled",
    "tree_manifest",
    "unsafe_debug",
    "usable_cpus",
    "utc_now",
    "verify",
    "working_directory",
    "write_atomic",
]
