"""The two environment switches of failure handling, read in one place.

* ``FLEXLOCK_TRACEBACK``: show the traceback of a user error (a `FlexLockError`:
  bad config, missing path, ...) that the ``flexlock`` command and ``@clicfg``
  scripts otherwise report as one line.
* ``FLEXLOCK_DEBUG``: keep a failed function's variables (`unsafe_debug`); its
  value selects the mode (``inject``, ``pdb``, or ``1`` to choose by context).

Both are read when they are needed, not at import, so a notebook can set them
with ``os.environ`` after importing flexlock. Stdlib only, imports nothing of flexlock.
"""

from __future__ import annotations

import os
import sys
from typing import Literal

__all__ = [
    "DEBUG_ENV",
    "TRACEBACK_ENV",
    "DebugMode",
    "debug_enabled",
    "debug_mode",
    "note",
    "traceback_enabled",
]

DEBUG_ENV = "FLEXLOCK_DEBUG"
TRACEBACK_ENV = "FLEXLOCK_TRACEBACK"

DebugMode = Literal["inject", "pdb", "auto"]

_OFF_VALUES = frozenset({"", "0", "false", "no", "off"})
_AUTO_VALUES = frozenset({"1", "true", "yes", "on", "auto"})
_MODES: tuple[DebugMode, ...] = ("inject", "pdb")


def _value(name: str) -> str:
    return os.environ.get(name, "").strip().lower()


def debug_mode(*, warn: bool = True) -> DebugMode | None:
    """Return the mode ``FLEXLOCK_DEBUG`` selects: 'inject', 'pdb', 'auto', or None (off).

    An unknown value counts as ``1`` ('auto'); with `warn`, a note on stderr says so.
    """
    value = _value(DEBUG_ENV)
    if value in _OFF_VALUES:
        return None
    for mode in _MODES:
        if value == mode:
            return mode
    if value not in _AUTO_VALUES and warn:
        note(f"{DEBUG_ENV}={value!r} is not one of 1, inject, pdb, 0; treating it as 1")
    return "auto"


def debug_enabled() -> bool:
    """Return whether ``FLEXLOCK_DEBUG`` asks for debugging (set and not 0/false/no/off)."""
    return debug_mode(warn=False) is not None


def traceback_enabled() -> bool:
    """Return whether ``FLEXLOCK_TRACEBACK`` asks for user errors' tracebacks.

    Set and not 0/false/no/off. The reporting of `FlexLockError` depends on it,
    and whether the traceback of a failure of the user's own code (always shown)
    keeps flexlock's frames.
    """
    return _value(TRACEBACK_ENV) not in _OFF_VALUES


def note(message: str) -> None:
    """Print `message` on stderr as a ``flexlock debug:`` note; never raise.

    Debugging runs inside exception handlers: a closed or broken stderr must not
    put a second error over the user's.
    """
    import contextlib  # here: `import flexlock.core` does not load it on 3.13

    with contextlib.suppress(Exception):
        print(f"flexlock debug: {message}", file=sys.stderr, flush=True)
