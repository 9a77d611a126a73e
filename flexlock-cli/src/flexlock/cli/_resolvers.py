"""The built-in config resolvers, registered under the `flexlock.resolvers` entry-point group.

A resolver is any callable `resolver(*args: str) -> value`; `${name:a,b}` calls
`resolver("a", "b")`. Third-party packages add their own with an entry point:

    [project.entry-points."flexlock.resolvers"]
    now = "mypackage.resolvers:now"
"""

from __future__ import annotations

import os

from flexlock.core import ConfigError

__all__ = ["env", "runlock_data", "runlock_out", "runlock_prev"]


def env(name: str = "", *default: str) -> str:
    """Return environment variable `name`, or `default` (`${env:VAR,default}`) when unset.

    Raises:
        ConfigError: the variable is unset and no default is given.
    """
    if not name:
        raise ConfigError("${env:...} needs a variable name, e.g. ${env:HOME}")
    value = os.environ.get(name)
    if value is not None:
        return value
    if default:
        return ",".join(default)  # the default may itself contain commas
    raise ConfigError(
        f"environment variable {name} is not set; set it, or give a default: ${{env:{name},VALUE}}"
    )


def runlock_data(path: str) -> str:
    """Return `path` and register it as a data input of the run (hashed into run.lock)."""
    from flexlock.core import register_data

    return register_data(path)


def runlock_prev(path: str) -> str:
    """Return `path` and register it as an upstream run (its run.lock is embedded in run.lock)."""
    from flexlock.core import register_prev

    return register_prev(path)


def runlock_out(path: str) -> str:
    """Return `path` and register it as an output of the run (hashed into run.lock at the end).

    For outputs outside the save_dir; what the run leaves in its save_dir is recorded
    without being declared.
    """
    from flexlock.core import register_output

    return register_output(path)
