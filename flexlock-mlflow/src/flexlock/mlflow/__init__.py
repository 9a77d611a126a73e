"""FlexLock MLflow plugin: log run sheets under a logical run id with race-free supersession.

`import flexlock.mlflow` does not import mlflow; the functions do, when called.
"""

from flexlock.core._version import __version__
from flexlock.mlflow._lock import LoggedRun, mlflow_lock, reconcile
from flexlock.mlflow._query import active_filter, active_run_for, active_runs

__all__ = [
    "LoggedRun",
    "__version__",
    "active_filter",
    "active_run_for",
    "active_runs",
    "mlflow_lock",
    "reconcile",
]
