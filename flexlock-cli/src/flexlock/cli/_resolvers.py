"""The built-in config resolvers, registered under the `flexlock.resolvers` entry-point group.

A resolver is any callable `resolver(*args: str) -> value`; `${name:a,b}` calls
`resolver("a", "b")`. Third-party packages add their own with an entry point:

    [project.entry-points."flexlock.resolvers"]
    now = "mypackage.resolvers:now"
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from flexlock.core import ConfigError

__all__ = [
    "NOW_ENV",
    "env",
    "invocation_time",
    "now",
    "runlock_data",
    "runlock_out",
    "runlock_prev",
]

#: The time `${now:...}` formats: taken once per invocation, passed on to tasks.
NOW_ENV = "FLEXLOCK_NOW"


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


def now(fmt: str = "%Y-%m-%d_%H-%M-%S") -> str:
    """Return the invocation's time (local, with its offset) formatted by strftime `fmt`.

    One time per invocation: the first call takes it and puts it in `FLEXLOCK_NOW`
    (ISO 8601), which every later call, and every task of a task list (its
    workers and Slurm jobs inherit it), formats. So a list lands in one dated
    folder; setting `FLEXLOCK_NOW` to a recorded time reuses that folder (resume).

    Raises:
        ConfigError: `FLEXLOCK_NOW` is not an ISO 8601 time.
    """
    from datetime import datetime

    text = os.environ.get(NOW_ENV)
    if text is None:
        text = datetime.now().astimezone().isoformat(timespec="seconds")
        os.environ[NOW_ENV] = text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{NOW_ENV}={text!r}: expected an ISO 8601 time such as 2026-12-02T13:40:05+01:00"
        ) from None
    return moment.strftime(fmt)


@contextlib.contextmanager
def invocation_time() -> Iterator[None]:
    """Scope `${now}` to one invocation: forget the time it took when the block ends.

    So two `main()` calls of one notebook get two times, while a time the user
    set in `FLEXLOCK_NOW` stays.
    """
    preset = NOW_ENV in os.environ
    try:
        yield
    finally:
        if not preset:
            os.environ.pop(NOW_ENV, None)
