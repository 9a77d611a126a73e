"""Turn a config tree into what a run records and what a person reads.

The layer between the config model (`_config`, `_interpolation`) and running:
the built config instance and its plain form for run.lock (`resolve`), the
class defaults (`default_plain`), the YAML of `--print_config` with changes
marked (`render_config`) and the field table of `--help` (`fields_help`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flexlock.cli._config import MISSING, ConfigTree, build, leaf_specs, to_plain, type_name
from flexlock.core import FlexLockError, clear_registered

__all__ = ["build_resolved", "default_plain", "fields_help", "render_config", "resolve"]


def resolve(tree: ConfigTree, *, private: bool = False) -> tuple[Any, dict[str, Any]]:
    """Interpolate and build `tree`; return (config instance, plain config for run.lock).

    `private=True` says nobody else holds `tree`, so its values need no copy first.

    Raises:
        ConfigError: a bad reference, resolver, value or missing key.
    """
    config = build_resolved(tree, private=private)
    return config, to_plain(config)


def build_resolved(tree: ConfigTree, *, private: bool = False) -> Any:
    """Interpolate and build `tree` into a config instance (see `resolve`)."""
    from flexlock.cli._interpolation import interpolate

    # A copy, so that the built config never shares a mutable value with the caller's tree.
    resolved = tree if private else tree.copy()
    resolved.values = interpolate(tree.values)
    return build(resolved)


def default_plain(config_class: type) -> dict[str, Any] | None:
    """Return the class defaults as a plain config (resolved), or None if they do not build."""
    try:
        return resolve(ConfigTree(config_class))[1]
    except FlexLockError:
        return None
    finally:
        clear_registered()  # resolvers of the defaults registered inputs no run asked for


def _flow_yaml(value: Any, *, allow_unicode: bool) -> str:
    """Return `value` as one line of YAML flow style."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=allow_unicode)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def render_config(
    plain: Mapping[str, Any], defaults: Mapping[str, Any] | None, indent: str = ""
) -> str:
    """Render a plain config as YAML, with `# changed, default: X` after each value that differs."""
    lines = []
    for key, value in plain.items():
        default = defaults.get(key, MISSING) if isinstance(defaults, Mapping) else MISSING
        if isinstance(value, dict) and value:
            lines.append(f"{indent}{key}:")
            lines.append(
                render_config(
                    value, default if isinstance(default, Mapping) else None, indent + "  "
                )
            )
            continue
        line = f"{indent}{key}: {_flow_yaml(value, allow_unicode=True)}"
        if defaults is not None and default != value:
            # Defaults keep non-ASCII text escaped, as --print_config always showed them.
            shown = "(required)" if default is MISSING else _flow_yaml(default, allow_unicode=False)
            line += f"  # changed, default: {shown}"
        lines.append(line)
    return "\n".join(lines)


def _default_text(value: Any) -> str:
    if value is MISSING:
        return "(required)"
    import enum
    from pathlib import PurePath

    if isinstance(value, enum.Enum):
        return repr(value.name)
    if isinstance(value, PurePath):
        return repr(str(value))
    factory = getattr(value, "factory", None)
    if factory is not None:
        try:
            value = factory()
        except Exception:
            return "(factory)"
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def fields_help(config_class: type) -> str:
    """Return the `--help` table of every config field: name, type, default, help text."""
    rows = [
        (name, type_name(spec.type), _default_text(spec.default), spec.help.replace("\n", " "))
        for name, spec in leaf_specs(config_class)
    ]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(3)]
    lines = [f"config fields ({config_class.__name__}; set with -o KEY VALUE):"]
    for name, kind, default, text in rows:
        line = f"  {name:<{widths[0]}}  {kind:<{widths[1]}}  {default:<{widths[2]}}  {text}"
        lines.append(line.rstrip())
    return "\n".join(lines)
