"""The config being assembled: one nested tree of raw values, checked key by key.

Class defaults, the instance passed to `main(cfg)`, YAML files and `-o`
overrides are written into one `ConfigTree`, checking each (nested or dotted)
key against the class and remembering where each value came from. After
interpolation (`_interpolation`), `build` converts every value by its field's
type and instantiates the classes (`_convert`), so every error names its key
and source.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
from collections.abc import Iterator, Mapping, Sequence
from pathlib import PurePath
from typing import Any, TypeVar

import attrs

from flexlock.cli._convert import build_class
from flexlock.cli._fields import (
    MISSING,
    DefaultFactory,
    FieldSpec,
    config_fields,
    is_config_class,
    leaf_specs,
    type_name,
)
from flexlock.cli._yaml_text import Text, show
from flexlock.core import ConfigError

__all__ = ["ConfigTree", "build", "structure_options", "to_plain"]

T = TypeVar("T")


def _closest(name: str, choices: Sequence[str]) -> str:
    import difflib  # for a misspelt key only: it compiles a regex on import

    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    shown = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
    return f"valid keys: {shown}"


class ConfigTree:
    """A config being assembled: nested dict of raw values plus where each value came from."""

    def __init__(self, config_class: type) -> None:
        self.config_class = config_class
        self.values: dict[str, Any] = _defaults(config_class)
        self.origins: dict[str, str] = {}

    def copy(self) -> ConfigTree:
        """Return an independent copy (task overrides go on copies)."""
        other = ConfigTree.__new__(ConfigTree)
        other.config_class = self.config_class
        other.values = copy.deepcopy(self.values)
        other.origins = dict(self.origins)
        return other

    def all_keys(self) -> list[str]:
        """Every dotted leaf key of the config class."""
        return [key for key, _ in leaf_specs(self.config_class)]

    def leaf_spec(self, dotted: str, origin: str) -> FieldSpec:
        """Return the spec of leaf `dotted`; ConfigError naming the closest keys if unknown."""
        cls = self.config_class
        parts = dotted.split(".")
        for depth, part in enumerate(parts):
            specs = {spec.name: spec for spec in config_fields(cls)}
            spec = specs.get(part)
            if spec is None:
                prefix = ".".join(parts[:depth])
                known = [f"{prefix}.{n}" if prefix else n for n in specs]
                hint = _closest(dotted, self.all_keys() if depth == 0 else known)
                raise ConfigError(f"unknown config key {dotted!r} ({origin}); {hint}")
            if depth == len(parts) - 1:
                if spec.section is not None:
                    raise ConfigError(
                        f"{dotted!r} is a section, not a value ({origin}); set its keys instead, "
                        f"e.g. {dotted}.{config_fields(spec.section)[0].name}"
                    )
                return spec
            if spec.section is None:
                raise ConfigError(
                    f"unknown config key {dotted!r} ({origin}): {'.'.join(parts[: depth + 1])!r} "
                    f"is a value of type {type_name(spec.type)}, not a section"
                )
            cls = spec.section
        raise AssertionError("unreachable")

    def set(self, dotted: str, value: Any, origin: str) -> None:
        """Set leaf `dotted` to `value` (checked against the class), remembering `origin`."""
        self.leaf_spec(dotted, origin)
        node = self.values
        *sections, leaf = dotted.split(".")
        for part in sections:
            node = node[part]
        node[leaf] = value
        self.origins[dotted] = origin

    def get(self, dotted: str) -> Any:
        """Return the raw value at `dotted` (a leaf or a section dict); KeyError if absent."""
        node: Any = self.values
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(dotted)
            node = node[part]
        return node

    def merge_mapping(self, mapping: Mapping[Any, Any], source: str, prefix: str = "") -> None:
        """Merge a (YAML) mapping of possibly nested or dotted keys; origin is `source:line`."""
        lines = getattr(mapping, "lines", {})
        for key, value in mapping.items():
            line = lines.get(key)
            origin = f"{source}:{line}" if line else source
            if not isinstance(key, str):
                raise ConfigError(f"{origin}: config keys must be strings, got {key!r}")
            dotted = f"{prefix}.{key}" if prefix else key
            if self._is_section(dotted, origin):
                if value is None:
                    continue  # `model:` with nothing under it
                if not isinstance(value, Mapping):
                    raise ConfigError(
                        f"{origin}: {dotted!r} is a section; expected a mapping of its keys, "
                        f"got {show(value)}"
                    )
                self.merge_mapping(value, source, dotted)
            else:
                self.set(dotted, value, origin)

    def _is_section(self, dotted: str, origin: str) -> bool:
        cls = self.config_class
        for part in dotted.split("."):
            spec = {s.name: s for s in config_fields(cls)}.get(part)
            if spec is None:
                self.leaf_spec(dotted, origin)  # raises with suggestions
                raise AssertionError("unreachable")
            if spec.section is None:
                return False
            cls = spec.section
        return True

    def is_section(self, dotted: str) -> bool:
        """Whether `dotted` names a section (nested config class)."""
        try:
            return self._is_section(dotted, "")
        except ConfigError:
            return False

    def merge_instance(self, instance: Any, origin: str = "main(cfg)") -> None:
        """Merge every field of a config instance (the object passed to `main(cfg)`)."""
        for dotted, value in _instance_leaves(self.config_class, instance):
            self.set(dotted, value, origin)


def _defaults(cls: type) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for spec in config_fields(cls):
        default = spec.default
        if spec.section is not None and (default is MISSING or isinstance(default, DefaultFactory)):
            tree[spec.name] = _defaults(spec.section)
        elif spec.section is not None and is_config_class(type(default)):
            sub = _defaults(spec.section)
            for dotted, value in _instance_leaves(spec.section, default):
                _put(sub, dotted, value)
            tree[spec.name] = sub
        else:
            tree[spec.name] = default() if isinstance(default, DefaultFactory) else _raw(default)
    return tree


def _put(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *sections, leaf = dotted.split(".")
    for part in sections:
        tree = tree[part]
    tree[leaf] = value


def _raw(value: Any) -> Any:
    """Make a Python default plain (Enum → member name, Path → str) so the tree pickles anywhere."""
    if isinstance(value, enum.Enum):
        return Text(value.name)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, tuple | list | set | frozenset):
        return [_raw(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _raw(item) for key, item in value.items()}
    if attrs.has(type(value)) or dataclasses.is_dataclass(value):
        return to_plain(value)
    return value


def _instance_leaves(cls: type, instance: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for spec in config_fields(cls):
        dotted = f"{prefix}{spec.name}"
        value = getattr(instance, spec.name, MISSING)
        if spec.section is not None and value is not MISSING and not isinstance(value, Mapping):
            yield from _instance_leaves(spec.section, value, dotted + ".")
        elif value is not MISSING:
            yield dotted, _raw(value)


def build(tree: ConfigTree) -> Any:
    """Convert every value of `tree` to its field type and instantiate the config classes.

    Raises:
        ConfigError: a missing required value, a value of the wrong type (naming
            the key, its source and the expected type), or a class validator failure.
    """
    return build_class(tree.config_class, tree.values, "", tree.origins, "default")


def structure_options(cls: type[T], options: Mapping[Any, Any], source: str) -> T:
    """Check an options mapping (e.g. from `load_yaml_file`) against config class `cls`.

    Keys may be nested or dotted; each value is converted by its field's type.
    Messages name the key, `source:line` (when `options` carries lines) and what
    was expected; an unknown key gets the closest valid ones.

    Raises:
        ConfigError: an unknown key, a missing required value, a wrong value.
    """
    tree = ConfigTree(cls)
    tree.merge_mapping(options, source)
    instance: T = build(tree)
    return instance


def to_plain(config: Any) -> Any:
    """Unstructure a config instance into plain YAML/JSON data (what run.lock records)."""
    from flexlock.core import to_plain as core_to_plain  # on first use: keeps `--help` light

    return core_to_plain(config)
