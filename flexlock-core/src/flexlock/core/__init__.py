"""FlexLock core: run sheets, hashing, git capture, unsafe_debug and plugin discovery.

Imports stay cheap: nothing heavy (yaml parsing aside, git libraries, joblib,
mlflow, submitit) is imported here, and nothing is registered at import time.
"""

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
from flexlock.core._version import __version__

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
    "RunInProgressError",
    "RunLock",
    "SkippedFile",
    "TaskFailedError",
    "VerificationError",
    "__version__",
    "dump",
    "dumps",
    "load",
    "loads",
    "load_plugin",
    "plugin_names",
]
