"""Convert raw config values to their field's type with cattrs, and build config instances.

One cattrs converter (`converter()`) structures every value: cattrs dispatches
on the target type (unions, literals, enums, paths, containers, config classes,
NewTypes) and collects the errors of container items with their index or key
(detailed validation), rendered as `item [1]: expected an integer, got 'x'`.

The hooks are our own rather than cattrs' built-in ones because the *kind* of
value matters as much as the target type: untyped `Text` (command line,
unquoted YAML) is converted by the target type, typed Python values are
checked, and cattrs' built-ins would coerce where a message is due (`str(5)`
for an int on a str field is fine, but iterating "abc" into a list of letters
or `int(True)` is not). Each hook's message says what was expected, with an
example; `build_class` adds the key, where the value came from and the type.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections import abc
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Literal, Union

import attrs

from flexlock.cli._fields import MISSING, config_fields, is_config_class, type_name
from flexlock.cli._yaml_text import ConversionError, Text, parse_yaml_text, resolve_text, show
from flexlock.core import ConfigError

if TYPE_CHECKING:
    import cattrs

__all__ = ["build_class", "convert", "converter"]

_NULL_WORDS = frozenset({"null", "None", "none", "~", "NULL", "Null"})
_TRUE_WORDS = frozenset({"true", "yes", "on", "1", "y"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0", "n"})

_SEQUENCES: tuple[Any, ...] = (
    list,
    tuple,
    set,
    frozenset,
    abc.Sequence,
    abc.MutableSequence,
    abc.Set,
    abc.MutableSet,
    abc.Iterable,
)
_SETS: tuple[Any, ...] = (set, frozenset, abc.Set, abc.MutableSet)
_MAPPINGS: tuple[Any, ...] = (dict, abc.Mapping, abc.MutableMapping)

Hook = Callable[[Any, Any], Any]


def convert(value: Any, tp: Any) -> Any:
    """Convert a raw value to type `tp`.

    Raises:
        ConversionError: the value does not fit; the message says what was expected
            (and, inside a list or mapping, at which item).
        ConfigError: a config class inside the value failed to build.
    """
    import cattrs

    try:
        return converter().structure(value, tp)
    except ConfigError:
        raise
    except ConversionError:
        raise
    except cattrs.BaseValidationError as error:
        raise ConversionError(_describe(error)) from None
    except (cattrs.errors.CattrsError, TypeError, ValueError) as error:
        raise ConversionError(f"cannot convert {show(value)} to {type_name(tp)}: {error}") from None


_ITEM_ERRORS_SHOWN = 3


def _describe(error: BaseException) -> str:
    """Render a cattrs validation error group as `item [i]: message; ...`."""
    messages = [f"item {path}: {text}" if path else text for path, text in _leaf_errors(error, "")]
    more = len(messages) - _ITEM_ERRORS_SHOWN
    shown = messages[:_ITEM_ERRORS_SHOWN] + ([f"{more} more"] if more > 0 else [])
    return "; ".join(shown)


def _leaf_errors(error: BaseException, path: str) -> Iterable[tuple[str, str]]:
    import cattrs
    from cattrs.errors import AttributeValidationNote, IterableValidationNote

    if not isinstance(error, cattrs.BaseValidationError):
        yield path, str(error)
        return
    for sub in error.exceptions:
        step = ""
        for note in getattr(sub, "__notes__", ()):
            if isinstance(note, IterableValidationNote):
                step = f"[{note.index!r}]"
            elif isinstance(note, AttributeValidationNote):
                step = f".{note.name}"
        yield from _leaf_errors(sub, path + step)


# -- the converter and its hooks ----------------------------------------------------------------


@functools.cache
def converter() -> cattrs.Converter:
    """Build the one cattrs converter for config values (cattrs is imported on first use)."""
    import cattrs

    conv = cattrs.Converter(detailed_validation=True)
    conv.register_unstructure_hook(PurePath, str)
    # Classes go to cattrs' singledispatch, which also serves their subclasses:
    # `_by_class` sends `class Color(str, Enum)` or an IntEnum to the enum hook.
    for cls, hook in (
        (str, _str),
        (int, _int),
        (float, _float),
        (bool, _bool),
        (PurePath, _path),
        (Path, _path),  # cattrs registers Path itself, ahead of PurePath
        (enum.Enum, _enum),
    ):
        conv.register_structure_hook(cls, _by_class(hook, cls))
    # Types that are not classes go through predicates; the later registered win.
    conv.register_structure_hook_func(is_config_class, _not_null(_structure_config_class))
    conv.register_structure_hook_func(_is_mapping, _not_null(functools.partial(_mapping, conv)))
    conv.register_structure_hook_func(_is_sequence, _not_null(functools.partial(_sequence, conv)))
    conv.register_structure_hook_func(_is_none, _none)
    conv.register_structure_hook_func(_is_literal, _literal)
    conv.register_structure_hook_func(_is_union, functools.partial(_union, conv))
    conv.register_structure_hook_func(
        _is_annotated, lambda value, tp: conv.structure(value, typing.get_args(tp)[0])
    )
    conv.register_structure_hook_func(_is_untyped, _untyped)
    return conv


def _is_none(tp: Any) -> bool:
    return tp is type(None)


def _is_untyped(tp: Any) -> bool:
    return tp is Any or tp is object


def _is_literal(tp: Any) -> bool:
    return typing.get_origin(tp) is Literal


def _is_annotated(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Annotated


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum)


def _is_sequence(tp: Any) -> bool:
    return tp in _SEQUENCES or typing.get_origin(tp) in _SEQUENCES


def _is_mapping(tp: Any) -> bool:
    return tp in _MAPPINGS or typing.get_origin(tp) in _MAPPINGS


def _by_class(hook: Hook, base: type) -> Hook:
    """Wrap the hook of class `base` for its subclasses too, and refuse null."""

    def structure(value: Any, tp: Any) -> Any:
        if tp is not base and base is not enum.Enum and _is_enum(tp):
            return structure_enum(value, tp)  # an enum mixing in str or int
        result = hook(value, tp)
        return result if tp is base or isinstance(result, tp) else tp(result)

    structure_enum = _by_class(_enum, enum.Enum) if base is not enum.Enum else hook
    return _not_null(structure)


def _not_null(hook: Hook) -> Hook:
    """Refuse null before `hook` sees it."""

    def structure(value: Any, tp: Any) -> Any:
        if value is None:
            raise ConversionError(f"expected {type_name(tp)}, got null")
        return hook(value, tp)

    return structure


def _untyped(value: Any, _: Any) -> Any:
    return resolve_text(value)


def _none(value: Any, _: Any) -> None:
    if value is None or (isinstance(value, Text) and value in _NULL_WORDS):
        return
    raise ConversionError(f"expected null, got {show(value)}")


def _str(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ConversionError(f"expected a string, got {show(value)}")


def _bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE_WORDS:
        return True
    if isinstance(value, str) and value.lower() in _FALSE_WORDS:
        return False
    raise ConversionError(f"expected true or false, got {show(value)}")


def _int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())  # decimal: `012` is 12, not YAML 1.1's octal 10
        except ValueError:
            pass
    raise ConversionError(f"expected an integer, got {show(value)}")


def _float(value: Any, _: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())  # `1e-3`, which YAML 1.1 would read as a string
        except ValueError:
            pass
    raise ConversionError(f"expected a number, got {show(value)}")


def _literal(value: Any, tp: Any) -> Any:
    choices = typing.get_args(tp)
    for choice in choices:
        if value == choice and type(value) in (type(choice), Text):
            return choice
        if isinstance(value, str) and not isinstance(choice, str) and str(choice) == value:
            return choice
    raise ConversionError(f"expected one of {', '.join(map(repr, choices))}, got {show(value)}")


def _enum(value: Any, tp: type[enum.Enum]) -> Any:
    if isinstance(value, tp):
        return value
    if isinstance(value, str) and value in tp.__members__:
        return tp[value]
    for member in tp:
        if value == member.value or (isinstance(value, str) and str(member.value) == value):
            return member
    names = ", ".join(repr(name) for name in tp.__members__)
    raise ConversionError(f"expected one of {names}, got {show(value)}")


def _path(value: Any, tp: type[PurePath]) -> PurePath:
    if isinstance(value, str | PurePath):
        return tp(value)
    raise ConversionError(f"expected a path, got {show(value)}")


def _union(conv: cattrs.Converter, value: Any, tp: Any) -> Any:
    args = typing.get_args(tp)
    expected = " | ".join(type_name(arg) for arg in args)
    none_ok = type(None) in args
    if value is None or (none_ok and isinstance(value, Text) and value in _NULL_WORDS):
        if none_ok:
            return None
        raise ConversionError(f"expected {expected}, got null")
    members = [arg for arg in args if arg is not type(None)]
    # Exact type match first (an int stays an int in int | str), then str last for
    # Text so that `-o x 3` on `int | str` is 3, not "3".
    for member in members:
        if isinstance(member, type) and type(value) is member:
            return value
    for member in [m for m in members if m is not str] + ([str] if str in members else []):
        try:
            return convert(value, member)
        except ConversionError:
            continue
    raise ConversionError(f"expected {expected}, got {show(value)}")


def _parsed(value: Any) -> Any:
    """A list or mapping given as one piece of text (`-o layers [64, 64]`) is parsed as YAML."""
    return parse_yaml_text(value) if isinstance(value, Text) else value


def _sequence(conv: cattrs.Converter, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    value = _parsed(value)
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise ConversionError(f"expected a list like [1, 2], got {show(value)}")
    items = list(value)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(items) != len(args):
            raise ConversionError(f"expected {len(args)} items ({type_name(tp)}), got {len(items)}")
        return tuple(_items(conv, tp, enumerate(items), lambda index: args[index]))
    item_type = args[0] if args else Any
    converted = _items(conv, tp, enumerate(items), lambda _: item_type)
    if origin is tuple:
        return tuple(converted)
    if origin in _SETS:
        return (frozenset if origin is frozenset else set)(converted)
    return converted


def _mapping(conv: cattrs.Converter, value: Any, tp: Any) -> dict[Any, Any]:
    value = _parsed(value)
    if not isinstance(value, Mapping):
        raise ConversionError(f"expected a mapping like {{a: 1}}, got {show(value)}")
    key_type, value_type = typing.get_args(tp) or (Any, Any)
    keys = _items(conv, tp, ((key, key) for key in value), lambda _: key_type)
    values = _items(conv, tp, value.items(), lambda _: value_type)
    return dict(zip(keys, values, strict=True))


def _items(
    conv: cattrs.Converter,
    tp: Any,
    items: Iterable[tuple[Any, Any]],
    item_type: Callable[[Any], Any],
) -> list[Any]:
    """Structure each (index or key, item); gather every failure as cattrs does, with its place."""
    from cattrs.errors import IterableValidationError, IterableValidationNote

    result: list[Any] = []
    errors: list[Exception] = []
    for index, item in items:
        try:
            result.append(conv.structure(item, item_type(index)))
        except ConfigError:
            raise
        except Exception as error:  # every item's error is reported, as cattrs does
            note = IterableValidationNote(f"@ {index!r}", index, item_type(index))
            error.__notes__ = [*getattr(error, "__notes__", []), note]  # type: ignore[attr-defined]
            errors.append(error)
    if errors:
        raise IterableValidationError(f"While structuring {type_name(tp)}", errors, tp)
    return result


def _structure_config_class(value: Any, tp: type) -> Any:
    value = _parsed(value)
    if isinstance(value, tp):
        return value
    if not isinstance(value, Mapping):
        raise ConversionError(f"expected a mapping of {tp.__name__} fields, got {show(value)}")
    return build_class(tp, value, "", {}, "value")


# -- building instances -------------------------------------------------------------------------


def build_class(
    cls: type, values: Mapping[str, Any], prefix: str, origins: Mapping[str, str], fallback: str
) -> Any:
    """Convert `values` to the field types of `cls` (sections recursively) and instantiate it.

    Args:
        cls: the config class.
        values: raw values by field name (a section's value is a mapping); a value
            that is `MISSING` or absent takes the field's default.
        prefix: dotted key of `cls` inside the whole config (`"model."`), for messages.
        origins: where each dotted key's value came from (`file:line`, `-o key`).
        fallback: the origin of keys not in `origins`.

    Raises:
        ConfigError: a missing required value, a value of the wrong type (naming
            the key, its source and the expected type), or a class validator failure.
    """
    kwargs: dict[str, Any] = {}
    for spec in config_fields(cls):
        dotted = f"{prefix}{spec.name}"
        raw = values.get(spec.name, MISSING)
        if spec.section is not None:
            if raw is MISSING:
                raw = {}
            if isinstance(raw, spec.section):
                kwargs[spec.init_name] = raw
            else:
                kwargs[spec.init_name] = build_class(
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
        except ConversionError as error:
            origin = origins.get(dotted, fallback)
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
