"""The manifest format: the text a directory's or a glob's hash is the digest of.

One `sha256sum`-style line per regular file, `<hex digest>  <path relative to the root>\\n`,
sorted by the bytes of the UTF-8 (surrogateescape) encoded paths. A name with a backslash,
newline or carriage return is escaped as GNU coreutils does: the line starts with `\\`, and
`\\\\`, `\\n`, `\\r` stand for those characters. docs/hashing.md gives the coreutils recipe.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain, repeat

from flexlock.core._digest import digest_bytes
from flexlock.core._errors import HashError

__all__ = [
    "hash_manifest",
    "manifest_differences",
    "parse_manifest",
    "render_manifest",
]

_UNESCAPES = {"\\\\": "\\", "\\n": "\n", "\\r": "\r"}
_ESCAPE = re.compile(r"\\.", re.DOTALL)
_HEX = re.compile(r"[0-9a-f]+")
# A well-formed line, for reading the path column alone (`.` stops at "\n" only, like the
# line split of `parse_manifest`): with the escape marker, and without (strings in C).
_LINE = re.compile(r"^(\\?)[0-9a-f]+  (.+)$", re.MULTILINE)
_PATH = re.compile(r"^\\?[0-9a-f]+  (.+)$", re.MULTILINE)


def _needs_escape(rel: str) -> bool:
    return "\\" in rel or "\n" in rel or "\r" in rel


def _line(digest: str, rel: str) -> str:
    if _needs_escape(rel):
        # GNU coreutils' rule: a leading backslash marks a line whose name is escaped.
        escaped = rel.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"\\{digest}  {escaped}\n"
    return f"{digest}  {rel}\n"


def _unescape(rel: str) -> str:
    return _ESCAPE.sub(lambda match: _UNESCAPES.get(match.group(), match.group()), rel)


def render_manifest(digests: Sequence[bytes], rels: Sequence[str]) -> bytes:
    """Return the manifest of files `rels` (already in byte order) with hex `digests`.

    The result is the bytes that are hashed; digests stay `bytes` (as the hash cache holds
    them), so an unchanged tree costs no str object per file.
    """
    names = "\0".join(rels)
    if _needs_escape(names):
        lines = map(_line, (digest.decode() for digest in digests), rels)
        return "".join(lines).encode("utf-8", "surrogateescape")
    paths = names.encode("utf-8", "surrogateescape").split(b"\0") if rels else []
    # Flattened (digest, "  ", path, "\n") runs: one join in C, nothing per line.
    runs = zip(digests, repeat(b"  "), paths, repeat(b"\n"))
    return b"".join(chain.from_iterable(runs))


def hash_manifest(text: str, *, algorithm: str = "sha256") -> str:
    """Return the `"<algorithm>:<hex>"` hash of a manifest (as `hash_path` records it).

    The manifest's bytes are its text encoded as UTF-8 with surrogateescape, so file names
    that are not valid UTF-8 hash as the bytes they are on disk.
    """
    return f"{algorithm}:{digest_bytes(text.encode('utf-8', 'surrogateescape'), algorithm)}"


def parse_manifest(text: str) -> dict[str, str]:
    """Return a manifest's files: relative path -> hex digest (without the algorithm prefix).

    Raises:
        HashError: a line is not `<hex>  <path>`, or a path appears twice; names the line.
    """
    files: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        escaped = line.startswith("\\")
        digest, separator, rel = line[escaped:].partition("  ")
        if not separator or not rel or not _HEX.fullmatch(digest):
            raise HashError(
                f"manifest line {number} is not '<hex digest>  <relative path>': {line[:200]!r}"
            )
        if escaped:
            rel = _unescape(rel)
        if rel in files:
            raise HashError(f"manifest line {number}: {rel!r} appears twice")
        files[rel] = digest
    return files


def _paths(text: str) -> list[str] | None:
    """Return the path column of a manifest in order; None if a line is malformed."""
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    if text.startswith("\\") or "\n\\" in text:  # an escaped line: unescape those
        paths = [_unescape(rel) if escaped else rel for escaped, rel in _LINE.findall(text)]
    else:
        paths = _PATH.findall(text)
    return paths if len(paths) == lines else None


def _same_paths(text: str, rels: Sequence[str]) -> bool:
    """Whether the manifest lists exactly `rels`, in order, checked in C without a regex.

    Each line ends with its path and the digest columns are all as wide as the first
    line's (the total length says so); a name needing escapes takes the slow path.
    """
    width = text.find("  ")
    if width < 0 or text.startswith("\\") or "\n\\" in text or not text.endswith("\n"):
        return False
    lines = text.split("\n")
    lines.pop()
    if len(lines) != len(rels) or not all(map(str.endswith, lines, rels)):
        return False
    return len(text) == sum(map(len, rels)) + len(rels) * (width + 3)


def manifest_differences(text: str, rels: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the paths of manifest `text` not in `rels`, and those of `rels` not in it.

    `rels` are distinct and in manifest (byte) order, as a listing gives them. Only the path
    column is read: when nothing was added, removed or renamed (the usual case) that is one
    regex pass and one list comparison, with no map of the whole manifest built.

    Raises:
        HashError: as `parse_manifest`, for a malformed manifest.
    """
    if _same_paths(text, rels):
        return (), ()
    recorded = _paths(text)
    if recorded is None or len(set(recorded)) != len(recorded):
        recorded = list(parse_manifest(text))  # raises, naming the bad line
    before, after = set(recorded), set(rels)
    return tuple(sorted(before - after)), tuple(sorted(after - before))
