"""Fields of config classes: attrs classes, dataclasses and plain class-attribute classes.

`config_fields` reads a class once (cached) into `FieldSpec`s: name, resolved
type, default, help text (field metadata or the attribute's docstring) and the
constructor keyword. Nothing here converts values; `_convert` does.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any, Literal, Union

import attrs

__all__ = [
    "MISSING",
    "DefaultFactory",
    "FieldSpec",
    "attribute_docstrings",
    "config_fields",
    "is_config_class",
    "leaf_specs",
    "type_name",
]


class _Missing:
    """Marker for a required field that has no value yet."""

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"  # a singleton across pickling (loky workers)


MISSING: Any = _Missing()


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
                default = MISSING if default.takes_self else DefaultFactory(default.factory)
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
                default = DefaultFactory(dc_field.default_factory)
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
                field_type, default = value, DefaultFactory(value)  # a nested class is a section
            elif name in hints:
                field_type, default = hints[name], value
            else:
                field_type = Any if value is None or value is MISSING else type(value)
                default = value
            if is_config_class(type(default)) and not is_config_class(field_type):
                field_type = type(default)
            specs.append(FieldSpec(name, field_type, default, docs.get(name, ""), init_name=name))
    return tuple(specs)


class DefaultFactory:
    """A default made by calling `factory()` (attrs Factory, dataclass default_factory)."""

    __slots__ = ("factory",)

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def __call__(self) -> Any:
        return self.factory()

    def __repr__(self) -> str:
        return f"DefaultFactory({self.factory!r})"


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


def _leaf_specs(cls: type, prefix: str = "") -> Iterator[tuple[str, FieldSpec]]:
    for spec in config_fields(cls):
        if spec.section is not None:
            yield from _leaf_specs(spec.section, f"{prefix}{spec.name}.")
        else:
            yield f"{prefix}{spec.name}", spec


def leaf_specs(cls: type) -> list[tuple[str, FieldSpec]]:
    """Return (dotted name, spec) of every leaf field of `cls`, sections flattened."""
    return list(_leaf_specs(cls))
