"""The one strict YAML loader, for run sheets and for config, task and executor files.

Layer "model and file format": imports only `_errors` (and yaml, on first use).

Strict means refusing what `yaml.safe_load` would silently accept: a duplicate
key (the second value would win unnoticed), python tags, and anchors/aliases
(an alias bomb is a few hundred bytes that expand to billions of nodes).
Config files may allow aliases (`<<: *base` is common in hand-written configs);
then the document's expanded size is checked before anything is built from it.
Unquoted timestamps stay strings: the run sheet stores ISO strings, and a date
in a config is text until a field's type says otherwise.

Every error names `source:line`. For the cli, the loader can keep unquoted
scalars as untyped text (converted later by the target field's type) and
remember the line of every mapping key and sequence item.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable
from typing import Any

from flexlock.core._errors import ConfigError

__all__ = [
    "MAX_YAML_CHARS",
    "MAX_YAML_DEPTH",
    "MAX_YAML_EXPANDED_CHARS",
    "MAX_YAML_NODES",
    "LineDict",
    "LineList",
    "load_yaml",
]

#: Documents longer than this are refused unparsed (a config file is a few kB). Equal to
#: the expansion cap, so a document refused there is one that aliases made large, and a
#: huge file is refused at once instead of after a minute of parsing.
MAX_YAML_CHARS = 16 * 1024 * 1024
#: With aliases allowed, documents expanding to more nodes than this are refused.
MAX_YAML_NODES = 1_000_000
#: With aliases allowed, documents whose scalars expand to more characters than this
#: are refused: 100,000 aliases of one 2 kB string pass the node cap but are 200 MB
#: of text to convert, hash and write into the run sheet.
MAX_YAML_EXPANDED_CHARS = 16 * 1024 * 1024
#: Collections nested deeper than this are refused before anything is built
#: (`"[" * 10000` would otherwise end in a RecursionError traceback).
MAX_YAML_DEPTH = 100

# The tags YAML's own resolver gives plain scalars; any other tag (`!!python/name:`,
# `!!binary`, a custom `!tag`) is never handed to `untyped` as text.
_STANDARD_SCALAR_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool")
)

# libyaml refuses escaped lone surrogates (non-UTF-8 file names in a sheet):
# those few documents take the pure-Python parser.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class LineDict(dict[Any, Any]):
    """A YAML mapping that remembers the (1-based) line of each key in `lines`."""

    lines: dict[Any, int]


class LineList(list[Any]):
    """A YAML sequence that remembers the (1-based) line of each item in `lines`."""

    lines: list[int]


def load_yaml(
    text: str,
    *,
    source: str | None = "<string>",
    what: str = "YAML",
    error: Callable[[str], Exception] = ConfigError,
    untyped: Callable[[str], Any] | None = None,
    lines: bool = False,
    aliases: bool = False,
    fast: bool = True,
    max_chars: int | None = MAX_YAML_CHARS,
) -> Any:
    """Parse one YAML (or JSON) document with the strict rules and return its data.

    Args:
        text: the document.
        source: the file it came from, named in errors as `source:line`; None for
            a one-line value (errors then give the column).
        what: what the document is, for errors (`invalid {what}: ...`).
        error: the exception class raised, called with the message.
        untyped: when given, every unquoted, untagged scalar other than null is
            passed to it instead of YAML's guess (`012` stays text, not 10).
        lines: return `LineDict`/`LineList` holding the line of each key and item.
        aliases: allow anchors and aliases, up to `MAX_YAML_NODES` expanded nodes
            and `MAX_YAML_EXPANDED_CHARS` expanded characters of scalars.
        fast: use libyaml's parser when PyYAML has it (about 10x faster; its
            messages for malformed YAML are terser).
        max_chars: refuse longer documents unparsed; None for no cap.

    Raises:
        Exception: of class `error`: bad YAML, a duplicate key, a python tag, an
            anchor or alias (or an expansion over the cap), a document over the cap.
    """
    import yaml

    if max_chars is not None and len(text) > max_chars:
        raise error(
            f"{source or '<value>'}: {len(text)} characters is over the {what} size cap "
            f"of {max_chars}; keep large data in files the config names, not in the config"
        )
    loader_class = _loader(
        fast and not _SURROGATE_ESCAPE.search(text), untyped, lines=lines, aliases=aliases
    )
    try:
        loader = loader_class(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as problem:
        mark = problem.problem_mark or problem.context_mark
        message = problem.problem or str(problem)
        raise error(_located(source, mark, f"invalid {what}", message)) from None
    except yaml.reader.ReaderError as problem:  # a control character (NUL, ...) in the text
        mark, message = _reader_problem(text, problem)
        raise error(_located(source, mark, f"invalid {what}", message)) from None
    except yaml.YAMLError as problem:
        message = str(problem).splitlines()[0] if str(problem) else type(problem).__name__
        raise error(_located(source, None, f"invalid {what}", message)) from None
    except RecursionError:  # only PyYAML's pure-Python composer recurses before _check_depth
        raise error(_located(source, None, f"invalid {what}", _too_deep_message())) from None


def _too_deep_message() -> str:
    return f"collections are nested more than {MAX_YAML_DEPTH} levels deep"


def _check_depth(root: Any) -> None:
    """Refuse a node tree nested deeper than `MAX_YAML_DEPTH` (iteratively: no recursion)."""
    import yaml
    from yaml.constructor import ConstructorError

    stack: list[tuple[Any, int]] = [(root, 0)]
    seen: set[int] = set()  # an alias is walked once
    while stack:
        node, depth = stack.pop()
        if id(node) in seen or isinstance(node, yaml.ScalarNode):
            continue
        seen.add(id(node))
        if depth >= MAX_YAML_DEPTH:
            raise ConstructorError(None, None, _too_deep_message(), node.start_mark)
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend(((key, depth + 1), (value, depth + 1)))


def _reader_problem(text: str, problem: Any) -> tuple[Any, str]:
    """Return (mark, message) for a ReaderError, whose own text spans two lines.

    libyaml reports a byte offset and the character's code, PyYAML's reader a
    character offset and the character itself.
    """
    character = problem.character
    if isinstance(character, int):
        before = text.encode("utf-8", "surrogateescape")[: problem.position].count(b"\n")
        code = character
    else:
        before = text.count("\n", 0, problem.position)
        code = ord(character)
    start = text.rfind("\n", 0, problem.position) + 1 if before else 0
    mark = types.SimpleNamespace(line=before, column=max(problem.position - start, 0))
    return mark, f"the control character #x{code:04x} is not allowed in YAML"


def _located(source: str | None, mark: Any, what: str, problem: str) -> str:
    """Return `source:line: what: problem`, or `what at column N: problem` without a source."""
    if source is None:
        where = f" at column {mark.column + 1}" if mark else ""
        return f"{what}{where}: {problem}"
    where = f"{source}:{mark.line + 1}" if mark else source
    return f"{where}: {what}: {problem}"


@functools.cache
def _loader(
    fast: bool, untyped: Callable[[str], Any] | None, *, lines: bool, aliases: bool
) -> type[Any]:
    """Build (once per combination) the safe loader class for these rules."""
    import yaml
    from yaml.constructor import ConstructorError

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if fast else yaml.SafeLoader
    merge_tag = "tag:yaml.org,2002:merge"

    class StrictLoader(base):  # type: ignore[misc, valid-type]
        # Dates stay strings (see the module docstring).
        yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's own class-level table
            first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith(":timestamp")]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }

        def get_single_data(self) -> Any:
            node = self.get_single_node()
            if node is None:
                return None
            _check_depth(node)
            if aliases:
                _check_expansion(node)
            return self.construct_document(node)

        def construct_object(self, node: Any, deep: bool = False) -> Any:
            # An alias is the same node met twice. Refusing it before building
            # anything keeps an alias bomb from ever reaching code that walks it.
            if not aliases and (node in self.constructed_objects or node in self.recursive_objects):
                raise ConstructorError(
                    None, None, "anchors and aliases are not allowed", node.start_mark
                )
            if (
                untyped is not None
                and isinstance(node, yaml.ScalarNode)
                and not node.style  # plain: None from PyYAML's parser, "" from libyaml's
                and node.tag in _STANDARD_SCALAR_TAGS
            ):
                value = untyped(node.value)
                self.constructed_objects[node] = value  # so that an alias to it is seen
                return value
            return super().construct_object(node, deep=deep)

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            # Duplicates are looked for among the mapping's own keys: a key that
            # overrides one brought in by a `<<` merge key is what merging is for.
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != merge_tag:
                    if key_node.value in seen:
                        raise ConstructorError(
                            "while constructing a mapping",
                            node.start_mark,
                            f"found duplicate key {key_node.value!r}",
                            key_node.start_mark,
                        )
                    seen.add(key_node.value)
            self.flatten_mapping(node)
            mapping: dict[Any, Any] = LineDict() if lines else {}
            key_lines: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                if untyped is not None and isinstance(key, str):
                    key = str(key)  # keys are names, not untyped values
                value = self.construct_object(value_node, deep=True)
                try:
                    mapping[key] = value
                except TypeError:
                    raise ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        "found an unhashable key",
                        key_node.start_mark,
                    ) from None
                key_lines[key] = key_node.start_mark.line + 1
            if lines:
                mapping.lines = key_lines  # type: ignore[attr-defined]
            return mapping

        def construct_sequence(self, node: Any, deep: bool = False) -> list[Any]:
            items = [self.construct_object(child, deep=True) for child in node.value]
            if not lines:
                return items
            with_lines = LineList(items)
            with_lines.lines = [child.start_mark.line + 1 for child in node.value]
            return with_lines

    StrictLoader.add_constructor("tag:yaml.org,2002:map", StrictLoader.construct_mapping)
    StrictLoader.add_constructor("tag:yaml.org,2002:seq", StrictLoader.construct_sequence)
    return StrictLoader


def _check_expansion(root: Any) -> None:
    """Refuse a document whose aliases expand it past the node or character cap, or a cycle.

    Runs on the composed node graph, before any Python value is built: each distinct
    node's expanded size is computed once, so a bomb costs its own size to refuse.
    """
    import yaml
    from yaml.constructor import ConstructorError

    sizes: dict[int, tuple[int, int]] = {}  # (nodes, characters) of each distinct node
    active: set[int] = set()

    def expanded(node: Any) -> tuple[int, int]:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in active:
            raise ConstructorError(None, None, "an alias refers to itself", node.start_mark)
        active.add(id(node))
        nodes, chars = 1, 0
        if isinstance(node, yaml.ScalarNode):
            chars = len(node.value)
        else:
            children = (
                node.value
                if isinstance(node, yaml.SequenceNode)
                else [child for pair in node.value for child in pair]
            )
            for child in children:
                child_nodes, child_chars = expanded(child)
                nodes += child_nodes
                chars += child_chars
        active.discard(id(node))
        if nodes > MAX_YAML_NODES:
            raise ConstructorError(
                None,
                None,
                f"aliases expand this document past {MAX_YAML_NODES} values (an alias bomb?)",
                node.start_mark,
            )
        if chars > MAX_YAML_EXPANDED_CHARS:
            raise ConstructorError(
                None,
                None,
                f"aliases expand this document past {MAX_YAML_EXPANDED_CHARS} characters "
                "(an alias bomb?)",
                node.start_mark,
            )
        sizes[id(node)] = (nodes, chars)
        return nodes, chars

    expanded(root)
