"""Untyped text, and reading config, task and executor files with the lines of their keys.

Unquoted YAML scalars and command-line values arrive as `Text`: untyped text
that is converted by the target field's type, never by YAML's guesses (so
`012` on a `str` field stays "012", `1e-3` on a float is 0.001, `no` on a str
is "no"). Quoted YAML strings and Python values keep their type.

Parsing is core's one strict loader (`flexlock.core.load_yaml`): duplicate keys
and python tags are refused; anchors, aliases and `<<` merge keys are allowed in
these hand-written files, up to a bounded expansion.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flexlock.core import ConfigError

__all__ = [
    "ConversionError",
    "Text",
    "load_yaml_file",
    "parse_yaml_text",
    "read_text",
    "resolve_text",
    "show",
    "with_lines",
    "yaml_kind",
]


class Text(str):
    """Untyped text (a command-line value or an unquoted YAML scalar), converted by field type."""

    __slots__ = ()


class ConversionError(ValueError):
    """A raw value that does not fit its target type; the message says what was expected."""


def show(value: Any) -> str:
    """Render a raw value for an error message, shortened to 60 characters."""
    text = repr(str(value)) if isinstance(value, Text) else repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def parse_yaml_text(text: str, *, keep_text: bool = True) -> Any:
    """Parse a one-line YAML/JSON value; unquoted scalars stay `Text` unless `keep_text` is False.

    Raises:
        ConversionError: `text` is not valid YAML (naming the column).
    """
    from flexlock.core import load_yaml  # on first use: `--help` parses no YAML

    return load_yaml(
        text,
        source=None,
        what=f"YAML/JSON {show(text)}",  # shortened: a bomb is kilobytes long
        error=ConversionError,
        untyped=Text if keep_text else None,
        aliases=True,
        fast=False,  # the pure-Python parser's messages are the more precise
    )


def resolve_text(value: Any) -> Any:
    """Turn `Text` (also inside lists and mappings) into what YAML makes of it (untyped fields)."""
    if isinstance(value, Text):
        return parse_yaml_text(value, keep_text=False)
    if isinstance(value, list):
        return [resolve_text(item) for item in value]
    if isinstance(value, dict):
        return {key: resolve_text(item) for key, item in value.items()}
    return value


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """Read a UTF-8 text file the user named (config, task or executor file).

    Raises:
        ConfigError: the file does not exist or cannot be read, naming `what` and the path.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {os.fspath(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {what} {os.fspath(path)!r}: {error}") from None


def load_yaml_file(path: str | os.PathLike[str], what: str = "config file") -> Any:
    """Read a YAML (or JSON) file keeping unquoted scalars as `Text` and the lines of keys.

    Mappings come back with `.lines` mapping each key to its line, sequences
    with `.lines` listing each item's line.

    Raises:
        ConfigError: missing/unreadable file or invalid YAML (with file:line).
    """
    from flexlock.core import load_yaml  # on first use: `--help` parses no YAML

    return load_yaml(
        read_text(path, what),
        source=os.fspath(path),
        what=f"YAML in {what}",
        untyped=Text,
        lines=True,
        aliases=True,
        fast=False,  # config files are small; the pure-Python parser's messages are clearer
    )


class _LineDict(dict[Any, Any]):
    """A mapping carrying the line of each key, like the mappings `load_yaml_file` returns."""

    lines: dict[Any, int]


def with_lines(mapping: dict[Any, Any], lines: dict[Any, int]) -> dict[Any, Any]:
    """Return a copy of `mapping` that carries `lines` (part of a file, merged with its lines)."""
    result = _LineDict(mapping)
    result.lines = lines
    return result


def yaml_kind(value: Any) -> str:
    """Name what a loaded YAML value is, in YAML's words (never an internal class name)."""
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__
