"""FlexLock MLflow plugin: log run sheets under a logical run id with race-free supersession.

`import flexlock.mlflow` does not import mlflow; the functions do, when called.
"""

from flexlock.core import __version__
from flexlock.mlflow._lock import LoggedRun, mlflow_lock, reconcile
from flexlock.mlflow._query import active_filter, active_run_for, active_runs, runs_for
from flexlock.mlflow._sheet import logical_run_key

__all__ = [
    "LoggedRun",
    "__version__",
    "active_filter",
    "active_run_for",
    "active_runs",
    "logical_run_key",
    "mlflow_lock",
    "reconcile",
    "runs_for",
]
