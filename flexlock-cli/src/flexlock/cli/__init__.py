"""FlexLock CLI: `@clicfg`, task lists, executors and the `flexlock` command.

Importing this package loads no joblib, git library, mlflow or submitit, and nothing
at all until a name is used (PEP 562): the `flexlock` command starts from here too.
"""

from __future__ import annotations

import importlib

from flexlock.core import __version__

# Not `from typing import TYPE_CHECKING`: importing typing costs a fifth of a bare
# interpreter's start, and nothing here needs it at run time (mypy reads the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from flexlock.cli._clicfg import CliFunction, clicfg
    from flexlock.cli._contract import (
        Executor,
        ExecutorFactory,
        ExecutorOptions,
        Task,
        TaskResult,
        TaskRunner,
    )

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

_HOMES = {
    "CliFunction": "_clicfg",
    "clicfg": "_clicfg",
    "Executor": "_contract",
    "ExecutorFactory": "_contract",
    "ExecutorOptions": "_contract",
    "Task": "_contract",
    "TaskResult": "_contract",
    "TaskRunner": "_contract",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'flexlock.cli' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flexlock.cli.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
