"""FlexLock mlflow plugin."""

from flexlock.core._version import __version__

__all__ = ["__version__"]
