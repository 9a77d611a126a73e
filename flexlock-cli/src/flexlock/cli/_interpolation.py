"""`${...}` interpolation of config values, after all sources are merged.

- `${model.lr}`: the value of another key (dotted, from the config root);
- `${name:arg1,arg2}`: the resolver `name` from the `flexlock.resolvers`
  entry-point group (`env`, `runlock_data`, `runlock_prev`, `runlock_out` are built in),
  called as `resolver(*args)` with string arguments;
- `\\${` writes a literal `${`.

A value that is exactly one `${...}` takes the referenced value with its type
(`${model.layers}` is a list); anything else is text, converted by the
target field's type afterwards. Arguments may themselves contain `${...}`.
Hand-written rather than OmegaConf: that would add a dependency and a second
config model for a ~100-line grammar.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flexlock.core import ConfigError, PluginError

__all__ = ["interpolate", "resolve_value"]

Lookup = Callable[[str], Any]


def _find_close(text: str, start: int) -> int:
    """Return the index of the `}` closing the `${` whose body starts at `start`, or -1."""
    depth = 1
    index = start
    while index < len(text):
        if text.startswith("${", index):
            depth += 1
            index += 2
            continue
        if text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def _split_arguments(body: str) -> list[str]:
    """Split resolver arguments on commas that are not inside a nested `${...}`."""
    parts, depth, current = [], 0, []
    index = 0
    while index < len(body):
        if body.startswith("${", index):
            depth += 1
            current.append("${")
            index += 2
            continue
        char = body[index]
        if char == "}" and depth:
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current).strip())
    return parts


class _Resolver:
    """Resolves the strings of one config, following references with cycle detection."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.resolved: dict[str, Any] = {}
        self.stack: list[str] = []

    def lookup(self, dotted: str, where: str) -> Any:
        if dotted in self.resolved:
            return self.resolved[dotted]
        if dotted in self.stack:
            cycle = " -> ".join([*self.stack[self.stack.index(dotted) :], dotted])
            raise ConfigError(
                f"interpolation cycle: {cycle}; break it by setting one of these keys"
            )
        node: Any = self.values
        parts = dotted.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                hint = _did_you_mean(node, parts[:depth], part)
                raise ConfigError(
                    f"config key {where!r}: ${{{dotted}}} refers to a key that does not exist"
                    + hint
                )
            node = node[part]
        self.stack.append(dotted)
        try:
            value = self.resolve_tree(node, dotted)
        finally:
            self.stack.pop()
        self.resolved[dotted] = value
        return value

    def resolve_tree(self, value: Any, where: str) -> Any:
        if isinstance(value, dict):
            return {key: self.resolve_tree(item, f"{where}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve_tree(item, where) for item in value]
        if isinstance(value, str) and "${" in value:
            return self.resolve_string(value, where)
        return value

    def resolve_string(self, text: str, where: str) -> Any:
        from flexlock.cli._yaml_text import Text

        pieces: list[Any] = []
        index = 0
        while index < len(text):
            if text.startswith("\\${", index):
                pieces.append("${")
                index += 3
                continue
            if text.startswith("${", index):
                close = _find_close(text, index + 2)
                if close < 0:
                    raise ConfigError(f"config key {where!r}: unclosed '${{' in {text!r}")
                value = self.evaluate(text[index + 2 : close], where)
                if index == 0 and close == len(text) - 1:
                    return value  # a whole-value reference keeps its type
                pieces.append(value)
                index = close + 1
                continue
            next_index = min(
                (i for i in (text.find("${", index), text.find("\\${", index)) if i >= 0),
                default=len(text),
            )
            pieces.append(text[index:next_index])
            index = next_index
        return Text("".join(_to_text(piece) for piece in pieces))

    def evaluate(self, body: str, where: str) -> Any:
        head, colon, rest = body.partition(":")
        name = head.strip()
        if colon and "${" not in head:
            arguments = [
                _to_text(self.resolve_string(arg, where)) if "${" in arg else arg
                for arg in _split_arguments(rest)
            ]
            return call_resolver(name, arguments, where)
        if not name:
            raise ConfigError(f"config key {where!r}: empty interpolation '${{}}'")
        return self.lookup(name, where)


def _did_you_mean(node: Any, parents: list[str], missing: str) -> str:
    """Return `; did you mean ${model.lr}?` for the keys of `node` close to `missing`."""
    import difflib

    if not isinstance(node, dict):
        return ""
    choices = [str(key) for key in node]
    close = difflib.get_close_matches(missing, choices, n=2, cutoff=0.6)
    if not close:
        return ""
    spelled = " or ".join("${" + ".".join([*parents, name]) + "}" for name in close)
    return f"; did you mean {spelled}?"


def _to_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def call_resolver(name: str, arguments: list[str], where: str) -> Any:
    """Load resolver `name` from `flexlock.resolvers` and call it with `arguments`.

    Raises:
        ConfigError: the resolver is unknown or its call fails (naming the key).
    """
    from flexlock.core import load_plugin

    try:
        resolver = load_plugin("flexlock.resolvers", name)
    except PluginError as error:
        raise ConfigError(f"config key {where!r}: ${{{name}:...}}: {error}") from None
    try:
        return resolver(*arguments)
    except ConfigError as error:
        raise ConfigError(f"config key {where!r}: {error}") from None
    except Exception as error:
        raise ConfigError(
            f"config key {where!r}: resolver {name!r} failed on {arguments!r}: "
            f"{type(error).__name__}: {error}"
        ) from None


def interpolate(values: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of the nested config `values` with every `${...}` resolved.

    Raises:
        ConfigError: unknown key or resolver, a cycle, or a failing resolver.
    """
    resolver = _Resolver(values)
    return {
        key: resolver.lookup(key, key) if isinstance(item, dict) or has_marker(item) else item
        for key, item in values.items()
    }


def has_marker(value: Any) -> bool:
    """Tell whether `value` (a string, or a list or dict holding strings) has a `${...}`."""
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, list):
        return any(has_marker(item) for item in value)
    if isinstance(value, dict):
        return any(has_marker(item) for item in value.values())
    return False


def resolve_value(text: str, values: dict[str, Any], where: str = "<value>") -> Any:
    """Resolve `${...}` in one string against the config `values`."""
    return _Resolver(values).resolve_string(text, where)
