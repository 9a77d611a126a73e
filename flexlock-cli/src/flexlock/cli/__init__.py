"""FlexLock CLI: `@clicfg`, task lists, executors and the `flexlock` command.

Importing this package loads no joblib, git library, mlflow or submitit.
"""

from flexlock.cli._clicfg import CliFunction, clicfg
from flexlock.cli._contract import (
    Executor,
    ExecutorFactory,
    ExecutorOptions,
    Task,
    TaskResult,
    TaskRunner,
)
from flexlock.core import __version__

__all__ = [
    "CliFunction",
    "Executor",
    "ExecutorFactory",
    "ExecutorOptions",
    "Task",
    "TaskResult",
    "TaskRunner",
    "__version__",
    "clicfg",
]
