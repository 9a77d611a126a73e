"""Config classes: their fields, merging sources into one tree, and conversion by field type.

A config goes through three steps, so that every error names its key and source:

1. *merge*: class defaults, the instance passed to `main(cfg)`, YAML files and
   `-o` overrides are written into one nested dict (`ConfigTree`), checking each
   key against the class and remembering where each value came from;
2. *interpolate*: `${...}` in string values are resolved (`_interpolation`);
3. *build*: each value is converted to its field's type and the classes are
   instantiated (attrs validators run).

Unquoted YAML scalars and command-line values arrive as `Text`: untyped text
that is converted by the target field's type, never by YAML's guesses (so
`012` on a `str` field stays "012", `1e-3` on a float is 0.001, `no` on a str
is "no"). Quoted YAML strings and Python values keep their type.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import os
import sys
import types
import typing
from collections import abc
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any, Literal, Union

import attrs

from flexlock.core._errors import ConfigError

__all__ = [
    "MISSING",
    "ConfigTree",
    "FieldSpec",
    "Text",
    "build",
    "config_fields",
    "convert",
    "is_config_class",
    "load_yaml_file",
    "parse_yaml_text",
    "to_plain",
    "type_name",
]


class _Missing:
    """Marker for a required field that has no value yet."""

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"  # a singleton across pickling (loky workers)


MISSING: Any = _Missing()


class Text(str):
    """Untyped text (a command-line value or an unquoted YAML scalar), converted by field type."""

    __slots__ = ()


_NULL_WORDS = frozenset({"null", "None", "none", "~", "NULL", "Null"})
_TRUE_WORDS = frozenset({"true", "yes", "on", "1", "y"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0", "n"})


# -- fields of a config class ----------------------------------------------------------------


class FieldSpec(typing.NamedTuple):
    """One field of a config class."""

    # A NamedTuple, not attrs: class creation is on the `--help` path and attrs compiles
    # several methods per class.

    name: str  # attribute name
    type: Any  # resolved annotation (Any when unknown)
    default: Any  # MISSING when required
    help: str = ""
    init_name: str = ""  # keyword for the class constructor (attrs aliases private names)

    @property
    def section(self) -> type | None:
        """The nested config class when this field is a section, else None."""
        return self.type if is_config_class(self.type) else None


def _is_plain_config_class(cls: Any) -> bool:
    return (
        isinstance(cls, type)
        and cls.__module__ != "builtins"
        and not issubclass(cls, enum.Enum | PurePath)
        and cls.__init__ is object.__init__  # constructible without arguments
        and any(True for _ in _plain_attributes(cls))
    )


def is_config_class(cls: Any) -> bool:
    """Whether `cls` is an attrs class, a dataclass or a plain class with class attributes."""
    if not isinstance(cls, type):
        return False
    return attrs.has(cls) or dataclasses.is_dataclass(cls) or _is_plain_config_class(cls)


def _plain_attributes(cls: type) -> Iterator[tuple[str, Any]]:
    seen: set[str] = set()
    annotations: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):
        annotations.update(getattr(klass, "__annotations__", {}))
    for klass in reversed(cls.__mro__[:-1]):
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            if isinstance(value, staticmethod | classmethod | property | types.FunctionType):
                continue
            seen.add(name)
            yield name, value
    for name in annotations:
        if not name.startswith("_") and name not in seen:
            yield name, MISSING


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        module = sys.modules.get(cls.__module__)
        return typing.get_type_hints(cls, globalns=vars(module) if module else None)
    except Exception:  # an unresolvable forward reference: fall back to types of defaults
        return {}


@functools.cache
def config_fields(cls: type) -> tuple[FieldSpec, ...]:
    """Return the fields of config class `cls`, in definition order.

    Docstrings come from `metadata={"help": ...}` (attrs, dataclasses) or from
    a string literal right after the attribute in the class body.
    """
    hints = _type_hints(cls)
    docs = attribute_docstrings(cls)
    specs: list[FieldSpec] = []
    if attrs.has(cls):
        for field in attrs.fields(cls):
            if not field.init:
                continue
            default = field.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = MISSING if default.takes_self else _Factory(default.factory)
            elif default is attrs.NOTHING:
                default = MISSING
            specs.append(
                FieldSpec(
                    name=field.name,
                    type=hints.get(
                        field.name, field.type if not isinstance(field.type, str) else Any
                    )
                    or Any,
                    default=default,
                    help=str(field.metadata.get("help", "")) or docs.get(field.name, ""),
                    init_name=field.alias or field.name,
                )
            )
    elif dataclasses.is_dataclass(cls):
        for dc_field in dataclasses.fields(cls):
            if not dc_field.init:
                continue
            if dc_field.default is not dataclasses.MISSING:
                default = dc_field.default
            elif dc_field.default_factory is not dataclasses.MISSING:
                default = _Factory(dc_field.default_factory)
            else:
                default = MISSING
            specs.append(
                FieldSpec(
                    name=dc_field.name,
                    type=hints.get(dc_field.name, Any),
                    default=default,
                    help=str(dc_field.metadata.get("help", "")) or docs.get(dc_field.name, ""),
                    init_name=dc_field.name,
                )
            )
    else:
        for name, value in _plain_attributes(cls):
            if isinstance(value, type) and is_config_class(value):
                field_type, default = value, _Factory(value)  # a nested class is a section
            elif name in hints:
                field_type, default = hints[name], value
            else:
                field_type = Any if value is None or value is MISSING else type(value)
                default = value
            if is_config_class(type(default)) and not is_config_class(field_type):
                field_type = type(default)
            specs.append(FieldSpec(name, field_type, default, docs.get(name, ""), init_name=name))
    return tuple(specs)


class _Factory:
    """A default made by calling `factory()` (attrs Factory, dataclass default_factory)."""

    __slots__ = ("factory",)

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def __call__(self) -> Any:
        return self.factory()

    def __repr__(self) -> str:
        return f"_Factory({self.factory!r})"


@functools.cache
def _class_bodies(filename: str) -> dict[str, list[Any]]:
    """Parse a source file once; map each class's qualified name to its body statements."""
    import ast
    import linecache

    # One parse per file instead of `inspect.getsource` per class, which re-parses the
    # whole module each time: this keeps `--help` cheap for configs with many sections.
    source = "".join(linecache.getlines(filename))
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    bodies: dict[str, list[Any]] = {}

    def visit(nodes: list[Any], prefix: str) -> None:
        for node in nodes:
            if isinstance(node, ast.ClassDef):
                bodies.setdefault(prefix + node.name, node.body)
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(node.body, f"{prefix}{node.name}.<locals>.")

    visit(tree.body, "")
    return bodies


def attribute_docstrings(cls: type) -> dict[str, str]:
    """Read attribute docstrings (a string literal after `name = value`) from class source."""
    import ast
    import inspect

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        module = sys.modules.get(klass.__module__)
        filename = getattr(module, "__file__", None)
        if not filename:  # no source (REPL, C classes): no docs
            continue
        body = _class_bodies(filename).get(klass.__qualname__, [])
        for node, after in zip(body, [*body[1:], None], strict=False):
            target = None
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                target = node.target.id
            elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                target = node.targets[0].id
            if (
                target
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[target] = inspect.cleandoc(after.value.value)
    return docs


def type_name(tp: Any) -> str:
    """Render a type annotation for humans: `int`, `list[int]`, `str | None`, `'a' | 'b'`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return "any"
    if tp is type(None):
        return "None"
    if origin is Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " | ".join(repr(member.name) for member in tp)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join('...' if a is Ellipsis else type_name(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


# -- the merge tree -----------------------------------------------------------------------------


def _closest(name: str, choices: Sequence[str]) -> str:
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
        import copy

        other = ConfigTree.__new__(ConfigTree)
        other.config_class = self.config_class
        other.values = copy.deepcopy(self.values)
        other.origins = dict(self.origins)
        return other

    def all_keys(self) -> list[str]:
        """Every dotted leaf key of the config class."""
        return [key for key, _ in _leaf_specs(self.config_class)]

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
                        f"got {_show(value)}"
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
        if spec.section is not None and (default is MISSING or isinstance(default, _Factory)):
            tree[spec.name] = _defaults(spec.section)
        elif spec.section is not None and is_config_class(type(default)):
            sub = _defaults(spec.section)
            for dotted, value in _instance_leaves(spec.section, default):
                _put(sub, dotted, value)
            tree[spec.name] = sub
        else:
            tree[spec.name] = default() if isinstance(default, _Factory) else _raw(default)
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


def _leaf_specs(cls: type, prefix: str = "") -> Iterator[tuple[str, FieldSpec]]:
    for spec in config_fields(cls):
        if spec.section is not None:
            yield from _leaf_specs(spec.section, f"{prefix}{spec.name}.")
        else:
            yield f"{prefix}{spec.name}", spec


def leaf_specs(cls: type) -> list[tuple[str, FieldSpec]]:
    """Return (dotted name, spec) of every leaf field of `cls`, sections flattened."""
    return list(_leaf_specs(cls))


# -- conversion ---------------------------------------------------------------------------------
# Written by hand rather than as cattrs hooks: cattrs dispatches on the target type
# only, while here the *kind* of value matters too (untyped `Text` from the command
# line or unquoted YAML vs typed Python values) and every error must name the key
# and the file:line it came from. cattrs still unstructures instances (`to_plain`).


class _ConversionError(Exception):
    pass


def _show(value: Any) -> str:
    text = repr(str(value)) if isinstance(value, Text) else repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def convert(value: Any, tp: Any) -> Any:
    """Convert a raw value to type `tp`; raise `_ConversionError` with what was expected."""
    if tp is Any or tp is object:
        return resolve_text(value)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return convert(value, args[0])
    if origin in (Union, types.UnionType):
        return _convert_union(value, args)
    if tp is type(None):
        if value is None or (isinstance(value, Text) and value in _NULL_WORDS):
            return None
        raise _ConversionError(f"expected null, got {_show(value)}")
    if origin is Literal:
        for choice in args:
            if value == choice and type(value) in (type(choice), Text):
                return choice
            if isinstance(value, str) and not isinstance(choice, str) and str(choice) == value:
                return choice
        raise _ConversionError(f"expected one of {', '.join(map(repr, args))}, got {_show(value)}")
    if value is None:
        raise _ConversionError(f"expected {type_name(tp)}, got null")
    if tp is str:
        if isinstance(value, str):
            return str(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise _ConversionError(f"expected a string, got {_show(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE_WORDS:
            return True
        if isinstance(value, str) and value.lower() in _FALSE_WORDS:
            return False
        raise _ConversionError(f"expected true or false, got {_show(value)}")
    if tp is int:
        if isinstance(value, bool):
            raise _ConversionError(f"expected an integer, got {_show(value)}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _ConversionError(f"expected an integer, got {_show(value)}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise _ConversionError(f"expected a number, got {_show(value)}")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _convert_enum(value, tp)
    if isinstance(tp, type) and issubclass(tp, PurePath):
        if isinstance(value, str | PurePath):
            return tp(value)
        raise _ConversionError(f"expected a path, got {_show(value)}")
    if isinstance(value, Text):
        value = parse_yaml_text(value)  # a list or mapping written as YAML/JSON
    if origin in (list, tuple, set, frozenset) or origin in _ABSTRACT_SEQUENCES:
        return _convert_sequence(value, tp, origin, args)
    if tp in (list, tuple, set, frozenset):
        return _convert_sequence(value, tp, tp, ())
    if origin in (dict,) or origin in _ABSTRACT_MAPPINGS or tp is dict:
        if not isinstance(value, Mapping):
            raise _ConversionError(f"expected a mapping like {{a: 1}}, got {_show(value)}")
        key_type, value_type = args if args else (Any, Any)
        return {convert(k, key_type): convert(v, value_type) for k, v in value.items()}
    if is_config_class(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise _ConversionError(
                f"expected a mapping of {tp.__name__} fields, got {_show(value)}"
            )
        return _build_class(tp, value, "", {}, "value")
    # Anything else (NewType, user classes with a one-argument constructor...): cattrs.
    return _cattrs_structure(resolve_text(value), tp)


_ABSTRACT_SEQUENCES: tuple[Any, ...] = (
    abc.Sequence,
    abc.MutableSequence,
    abc.Set,
    abc.MutableSet,
    abc.Iterable,
)
_ABSTRACT_MAPPINGS: tuple[Any, ...] = (abc.Mapping, abc.MutableMapping)


def _convert_sequence(value: Any, tp: Any, origin: Any, args: tuple[Any, ...]) -> Any:
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise _ConversionError(f"expected a list like [1, 2], got {_show(value)}")
    items = list(value)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(items) != len(args):
            raise _ConversionError(
                f"expected {len(args)} items ({type_name(tp)}), got {len(items)}"
            )
        return tuple(convert(item, arg) for item, arg in zip(items, args, strict=True))
    item_type = args[0] if args else Any
    converted = [convert(item, item_type) for item in items]
    if origin is tuple:
        return tuple(converted)
    if origin in (set, frozenset) or origin in _ABSTRACT_SEQUENCES[2:4]:
        return (frozenset if origin is frozenset else set)(converted)
    return converted


def _convert_union(value: Any, args: tuple[Any, ...]) -> Any:
    none_ok = type(None) in args
    if value is None or (none_ok and isinstance(value, Text) and value in _NULL_WORDS):
        if none_ok:
            return None
        raise _ConversionError(f"expected {' | '.join(type_name(a) for a in args)}, got null")
    members = [arg for arg in args if arg is not type(None)]
    # Exact type match first (an int stays an int in int | str), then str last for
    # Text so that `-o x 3` on `int | str` is 3, not "3".
    for member in members:
        if isinstance(member, type) and type(value) is member:
            return value
    ordered = [m for m in members if m is not str] + ([str] if str in members else [])
    for member in ordered:
        try:
            return convert(value, member)
        except _ConversionError:
            continue
    raise _ConversionError(f"expected {' | '.join(type_name(a) for a in args)}, got {_show(value)}")


def _convert_enum(value: Any, tp: type[enum.Enum]) -> Any:
    if isinstance(value, tp):
        return value
    if isinstance(value, str) and value in tp.__members__:
        return tp[value]
    for member in tp:
        if value == member.value or (isinstance(value, str) and str(member.value) == value):
            return member
    raise _ConversionError(
        f"expected one of {', '.join(repr(name) for name in tp.__members__)}, got {_show(value)}"
    )


def _cattrs_structure(value: Any, tp: Any) -> Any:
    import cattrs

    try:
        return _converter().structure(value, tp)
    except (cattrs.BaseValidationError, TypeError, ValueError) as error:
        raise _ConversionError(
            f"cannot convert {_show(value)} to {type_name(tp)}: {error}"
        ) from None


@functools.cache
def _converter() -> Any:
    import cattrs

    converter = cattrs.Converter()
    converter.register_unstructure_hook(PurePath, str)
    return converter


def resolve_text(value: Any) -> Any:
    """Turn `Text` (also inside lists and mappings) into what YAML makes of it (untyped fields)."""
    if isinstance(value, Text):
        return parse_yaml_text(value, keep_text=False)
    if isinstance(value, list):
        return [resolve_text(item) for item in value]
    if isinstance(value, dict):
        return {key: resolve_text(item) for key, item in value.items()}
    return value


# -- building instances -------------------------------------------------------------------------


def build(tree: ConfigTree) -> Any:
    """Convert every value of `tree` to its field type and instantiate the config classes.

    Raises:
        ConfigError: a missing required value, a value of the wrong type (naming
            the key, its source and the expected type), or a class validator failure.
    """
    return _build_class(tree.config_class, tree.values, "", tree.origins, "default")


def _build_class(
    cls: type, values: Mapping[str, Any], prefix: str, origins: Mapping[str, str], fallback: str
) -> Any:
    kwargs: dict[str, Any] = {}
    for spec in config_fields(cls):
        dotted = f"{prefix}{spec.name}"
        raw = values.get(spec.name, MISSING)
        origin = origins.get(dotted, fallback)
        if spec.section is not None:
            if raw is MISSING:
                raw = {}
            if isinstance(raw, spec.section):
                kwargs[spec.init_name] = raw
                continue
            kwargs[spec.init_name] = _build_class(
                spec.section, raw, dotted + ".", origins, fallback
            )
            continue
        if raw is MISSING:
            if spec.default is not MISSING:
                continue
            raise ConfigError(
                f"config key {dotted!r} has no value and no default; set it with "
                f"-o {dotted} VALUE or in a --config file"
            )
        try:
            kwargs[spec.init_name] = convert(raw, spec.type)
        except _ConversionError as error:
            raise ConfigError(
                f"config key {dotted!r} ({origin}): {error} (type {type_name(spec.type)})"
            ) from None
    try:
        if attrs.has(cls) or dataclasses.is_dataclass(cls):
            return cls(**kwargs)
        instance = cls()
        for name, value in kwargs.items():
            setattr(instance, name, value)
        return instance
    except (TypeError, ValueError) as error:
        where = prefix.rstrip(".") or cls.__name__
        raise ConfigError(f"invalid config {where!r}: {error}") from None


def to_plain(config: Any) -> Any:
    """Unstructure a config instance into plain YAML/JSON data (what run.lock records)."""
    from flexlock.core._identity import to_plain as core_to_plain

    return core_to_plain(config)


# -- YAML ---------------------------------------------------------------------------------------


class _LineDict(dict[Any, Any]):
    """A YAML mapping that remembers the line of each key."""

    lines: dict[Any, int]


class _LineList(list[Any]):
    """A YAML sequence that remembers the line of each item."""

    lines: list[int]


@functools.cache
def _text_loader() -> type:
    """A SafeLoader that keeps unquoted scalars as `Text` and remembers lines; no aliases."""
    import yaml

    class TextLoader(yaml.SafeLoader):
        def construct_object(self, node: Any, deep: bool = False) -> Any:
            if (
                isinstance(node, yaml.ScalarNode)
                and node.style is None
                and node.tag != "tag:yaml.org,2002:null"
                and not node.tag.startswith("!")
            ):
                return Text(node.value)
            return super().construct_object(node, deep=deep)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            self.flatten_mapping(node)
            mapping = _LineDict()
            mapping.lines = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                key = str(key) if isinstance(key, Text) else key
                if key in mapping:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r}",
                        key_node.start_mark,
                    )
                mapping[key] = self.construct_object(value_node, deep=True)
                mapping.lines[key] = key_node.start_mark.line + 1
            return mapping

        def construct_sequence(self, node: Any, deep: bool = False) -> Any:
            items = _LineList(self.construct_object(child, deep=True) for child in node.value)
            items.lines = [child.start_mark.line + 1 for child in node.value]
            return items

    TextLoader.add_constructor("tag:yaml.org,2002:map", TextLoader.construct_mapping)
    TextLoader.add_constructor("tag:yaml.org,2002:seq", TextLoader.construct_sequence)
    return TextLoader


def parse_yaml_text(text: str, *, keep_text: bool = True, source: str = "<value>") -> Any:
    """Parse YAML/JSON `text`; unquoted scalars stay `Text` unless `keep_text` is False.

    Raises:
        _ConversionError: `text` is not valid YAML.
    """
    import yaml

    try:
        if not keep_text:
            return yaml.safe_load(text)
        loader = _text_loader()(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or error
        raise _ConversionError(f"invalid YAML/JSON {text!r}{where}: {problem}") from None


def load_yaml_file(path: str | os.PathLike[str], what: str = "config file") -> Any:
    """Read a YAML (or JSON) file keeping unquoted scalars as `Text` and lines of keys.

    Raises:
        ConfigError: missing/unreadable file or invalid YAML (with file:line).
    """
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {os.fspath(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {what} {os.fspath(path)!r}: {error}") from None
    try:
        loader = _text_loader()(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{os.fspath(path)}:{mark.line + 1}" if mark else os.fspath(path)
        raise ConfigError(f"{where}: invalid YAML in {what}: {error.problem or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{os.fspath(path)}: invalid YAML in {what}: {error}") from None
