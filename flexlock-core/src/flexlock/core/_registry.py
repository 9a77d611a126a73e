"""Inputs registered while a config is resolved, for `runlock()` to record.

Config resolvers (`${runlock_data:path}`, `${runlock_prev:path}`,
`${runlock_out:path}`, provided by flexlock-cli) call `register_data`,
`register_prev` and `register_output`; `runlock()` and the
`@clicfg` wrapper read them with `registered()`. The registry is a context
variable, so threads and tasks run in one process do not see each other's
inputs; `clear_registered()` starts a fresh set.
"""

from __future__ import annotations

import contextvars

import attrs

__all__ = [
    "Registered",
    "clear_registered",
    "register_data",
    "register_output",
    "register_prev",
    "registered",
]


@attrs.frozen
class Registered:
    """Data inputs and upstream runs registered so far, in registration order, without repeats."""

    data: tuple[str, ...] = ()
    prevs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


_registered: contextvars.ContextVar[Registered] = contextvars.ContextVar(
    "flexlock_registered",
    default=Registered(),  # noqa: B039 - frozen, so sharing the default is safe
)


def register_data(path: str) -> str:
    """Record `path` as a data input of the current run and return it unchanged."""
    current = _registered.get()
    if path not in current.data:
        _registered.set(attrs.evolve(current, data=(*current.data, path)))
    return path


def register_prev(path: str) -> str:
    """Record `path` as an upstream run (dir or run.lock) of this run; return it unchanged."""
    current = _registered.get()
    if path not in current.prevs:
        _registered.set(attrs.evolve(current, prevs=(*current.prevs, path)))
    return path


def register_output(path: str) -> str:
    """Record `path` as an output of this run (outside its save_dir); return it unchanged."""
    current = _registered.get()
    if path not in current.outputs:
        _registered.set(attrs.evolve(current, outputs=(*current.outputs, path)))
    return path


def registered() -> Registered:
    """Return what has been registered in this context."""
    return _registered.get()


def clear_registered() -> None:
    """Forget every registration in this context."""
    _registered.set(Registered())
