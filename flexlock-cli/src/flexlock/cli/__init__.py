"""FlexLock CLI: `@clicfg`, task lists, executors and the `flexlock` command.

Importing this package loads no joblib, git library, mlflow or submitit.
"""

from flexlock.core._version import __version__

__all__ = ["__version__"]
