"""Plugin discovery by entry-point group: by name, loaded late, cached.

Entry points are read once per group (`importlib.metadata` is imported only
then), and only the requested name is `.load()`ed. A broken plugin is a
warning naming its distribution, an unknown name lists the installed ones,
and a known-but-missing name gives the exact `pip install`.
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any

from flexlock.core._errors import PluginError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["GROUPS", "load_plugin", "plugin_names"]

#: The entry-point groups flexlock distributions talk through (DESIGN.md §2).
GROUPS = ("flexlock.executors", "flexlock.resolvers", "flexlock.commands")

# Names that first-party distributions provide, so a missing one can be
# installed with one command instead of guessed.
_PROVIDERS: dict[tuple[str, str], str] = {
    ("flexlock.executors", "serial"): "flexlock-cli",
    ("flexlock.executors", "local"): "flexlock-cli",
    ("flexlock.executors", "slurm"): "flexlock-slurm",
    ("flexlock.commands", "mlflow"): "flexlock-mlflow",
    ("flexlock.resolvers", "runlock_data"): "flexlock-cli",
    ("flexlock.resolvers", "runlock_prev"): "flexlock-cli",
    ("flexlock.resolvers", "env"): "flexlock-cli",
}


@functools.cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points

    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=group):
        # First one wins, as for console scripts; duplicates are rare and
        # would be a packaging bug of the second distribution.
        found.setdefault(entry_point.name, entry_point)
    return found


def plugin_names(group: str) -> list[str]:
    """Return the sorted names installed in entry-point `group`."""
    return sorted(_entry_points(group))


def _distribution_name(entry_point: EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return dist.name if dist is not None else "unknown distribution"


@functools.cache
def load_plugin(group: str, name: str) -> Any:
    """Load the object registered as `name` in entry-point `group`.

    Raises:
        PluginError: the name is not installed (the message lists the installed
            names and, for first-party plugins, the `pip install` that provides
            it) or importing it failed.
    """
    entry_point = _entry_points(group).get(name)
    if entry_point is None:
        installed = ", ".join(plugin_names(group)) or "none"
        provider = _PROVIDERS.get((group, name))
        hint = (
            f" It is provided by {provider}: pip install {provider}"
            if provider
            else " Install the package that provides it, or pick an installed one."
        )
        raise PluginError(f"unknown {group} plugin {name!r} (installed: {installed}).{hint}")
    try:
        return entry_point.load()
    except Exception as error:
        raise PluginError(
            f"{group} plugin {name!r} from {_distribution_name(entry_point)} failed to load: "
            f"{type(error).__name__}: {error}. Reinstall or upgrade that distribution."
        ) from error


def iter_plugins(group: str) -> list[tuple[str, Any]]:
    """Load every plugin in `group`; a broken one is skipped, warning with its distribution."""
    loaded = []
    for name in plugin_names(group):
        try:
            loaded.append((name, load_plugin(group, name)))
        except PluginError as error:
            warnings.warn(str(error), stacklevel=2)
    return loaded
