"""Which files a data input is: the one walker behind hashing and `verify --fast`.

An input is a file, a directory or a glob (`*`, `?`, `[...]`, `**`). A directory is walked
with its symlinks followed (pulled data may be a symlink farm) and the excludes skipped at
every depth; a link back to an ancestor directory, a broken link and a non-regular file are
errors that name the path. The files come back sorted by the bytes of their paths relative
to the input's root, each once, with their packed stat keys (size, mtime_ns, inode, device)
for the hash cache, their total size and newest mtime: everything but the contents.
"""

# Paths stay `str` on purpose (ruff PTH off): a Path object per file costs more than the
# `stat` it wraps on a 1M-file tree, and surrogate-escaped names round-trip as plain str.
# ruff: noqa: PTH100, PTH109, PTH114, PTH115, PTH116, PTH118, PTH119, PTH207

from __future__ import annotations

import errno
import fnmatch
import operator
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import attrs

from flexlock.core._digest import EXCLUDE_HINT
from flexlock.core._errors import HashError
from flexlock.core._hashcache import STAT_KEY_BYTES, pack_stat_key, unpack_stat_key

__all__ = [
    "DEFAULT_EXCLUDES",
    "KEY_BYTES",
    "Excludes",
    "InputKind",
    "Listing",
    "classify",
    "collect",
    "list_files",
]

#: Names skipped at every depth of a directory or glob unless `excludes=` says otherwise:
#: version-control metadata, Python bytecode caches, flexlock's own state and macOS Finder
#: files, none of which is data and all of which differ between copies of the same data.
DEFAULT_EXCLUDES: tuple[str, ...] = (".git", ".hg", ".svn", "__pycache__", ".flexlock", ".DS_Store")

#: Length of one file's packed (size, mtime_ns, inode, device) in `Listing.keys`.
KEY_BYTES = STAT_KEY_BYTES
#: What an input is.
InputKind = Literal["file", "directory", "glob"]

_S_IFMT, _S_IFREG, _S_IFDIR = stat.S_IFMT(0o177777), stat.S_IFREG, stat.S_IFDIR
_GLOB_MAGIC = re.compile(r"[*?[]")
_NO_MTIME = -(1 << 63)  # below any st_mtime_ns (a signed 64-bit count of nanoseconds)
_NON_REGULAR_KINDS = (
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


@attrs.frozen
class Listing:
    """The files of one input, sorted by the bytes of their relative paths, each once.

    `rels` are the relative paths; `keys` their packed stat keys (`KEY_BYTES` each, in the
    same order) in one buffer, not an object per file: on a 1M-file tree the walk's tuples
    and key objects measured ~0.2 KiB per file. `newest` is the newest mtime_ns among them
    (None without files); `locate` turns a relative path into the path to open.
    """

    kind: InputKind
    rels: list[str]
    keys: bytearray
    size: int
    newest: int | None
    locate: Callable[[str], str]


class Excludes:
    """Exclude patterns: a name pattern matches at any depth, one with '/' the relative path."""

    def __init__(self, patterns: Sequence[str]) -> None:
        if isinstance(patterns, str):
            raise HashError(f"excludes must be a list of patterns, not the string {patterns!r}")
        names = [p for p in patterns if "/" not in p.strip("/")]
        paths = [p.strip("/") for p in patterns if "/" in p.strip("/")]
        self.literal = frozenset(p.strip("/") for p in names if not _GLOB_MAGIC.search(p))
        wild = [p for p in names if _GLOB_MAGIC.search(p)]
        self.name_match = re.compile("|".join(map(fnmatch.translate, wild))).match if wild else None
        self.path_match = (
            re.compile("|".join(map(fnmatch.translate, paths))).match if paths else None
        )

    def name(self, name: str) -> bool:
        """Whether a file or directory called `name` is skipped wherever it is."""
        return name in self.literal or (self.name_match is not None and bool(self.name_match(name)))

    def rel_path(self, rel: str) -> bool:
        """Whether any component of `rel`, or `rel` itself, is excluded."""
        if self.path_match is not None and self.path_match(rel):
            return True
        return any(self.name(part) for part in rel.split("/"))


# --- errors -------------------------------------------------------------------------------


def _stat_error(path: str, error: OSError, *, top: bool = False) -> HashError:
    if error.errno == errno.ELOOP:
        return HashError(
            f"symlink loop at {path}: resolving it leads back to itself; fix or remove the link"
            f" {EXCLUDE_HINT}"
        )
    if error.errno == errno.ENOENT and os.path.islink(path):
        target = os.readlink(path)
        return HashError(
            f"broken symlink {path} -> {target}: the target does not exist; fix or remove the link"
            f" {EXCLUDE_HINT}"
        )
    if error.errno == errno.ENOENT and top:
        return HashError(
            f"cannot hash {path}: no such file or directory (relative to {os.getcwd()});"
            " check the path"
        )
    if error.errno == errno.ENOENT:
        return HashError(f"{path} disappeared while being hashed; hash again once writers are done")
    if error.errno in (errno.EACCES, errno.EPERM):
        return HashError(
            f"cannot access {path}: permission denied; fix its permissions {EXCLUDE_HINT}"
        )
    return HashError(f"cannot access {path}: {error.strerror or error} {EXCLUDE_HINT}")


def _non_regular_error(path: str, mode: int) -> HashError:
    kind = next((name for test, name in _NON_REGULAR_KINDS if test(mode)), "special file")
    return HashError(f"{path} is a {kind}, not a regular file; remove it {EXCLUDE_HINT}")


# --- walking ------------------------------------------------------------------------------


def _needs_encoding(names: list[str]) -> bool:
    """Whether `names` must be encoded to sort by their bytes (they hold surrogate escapes).

    Without surrogate escapes (names that are not UTF-8), code point order is UTF-8 byte
    order and the names sort as they are, without an encoded copy each.
    """
    try:
        "\0".join(names).encode()
    except UnicodeEncodeError:
        return True
    return False


def _path_bytes(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


_FIRST, _SECOND, _THIRD = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter(2)
# A file of a directory being walked: (name, relative path, packed stat key); a directory:
# (name + "/", relative path, None, its path to scan, its stat result).
_FileEntry = tuple[str, str, bytes]
_DirEntry = tuple[str, str, None, str, os.stat_result]
_Entry = _FileEntry | _DirEntry


def _sort(entries: list[_FileEntry] | list[_Entry]) -> None:
    """Sort one directory's entries by the bytes of their names (see `_needs_encoding`).

    A directory sorts as its name plus "/", so its files land where a sort of whole paths
    puts them ("a.txt" < "a/b" < "a0").
    """
    if _needs_encoding(list(map(_FIRST, entries))):
        entries.sort(key=lambda entry: _path_bytes(entry[0]))
    else:
        entries.sort(key=_FIRST)


def _scan(
    directory: str, prefix: str, excludes: Excludes, totals: list[int]
) -> tuple[list[_FileEntry], list[_DirEntry]]:
    """Return the files and the directories in one directory; add to `totals` (size, newest).

    Each entry is stat'ed as it is read, not after listing the whole directory: measured
    ~15% faster on 100k files (the entry is still in the CPU caches). An OSError here is
    the directory's: an entry's own becomes a HashError below.
    """
    literal, name_match, path_match = excludes.literal, excludes.name_match, excludes.path_match
    files: list[_FileEntry] = []
    directories: list[_DirEntry] = []
    total, newest = totals
    try:
        with os.scandir(directory) as scan:
            for entry in scan:
                name = entry.name
                if name in literal or (name_match is not None and name_match(name)):
                    continue
                rel = prefix + name
                if path_match is not None and path_match(rel):
                    continue
                try:
                    info = entry.stat()
                except OSError as error:
                    raise _stat_error(entry.path, error) from None
                # Mode bits tested inline: this loop runs once per file of a 1M-file tree.
                kind = info.st_mode & _S_IFMT
                if kind == _S_IFREG:
                    size, mtime = info.st_size, info.st_mtime_ns
                    files.append((name, rel, pack_stat_key(size, mtime, info.st_ino, info.st_dev)))
                    total += size
                    if mtime > newest:  # noqa: PLR1730 - a call to max() per file costs more
                        newest = mtime
                elif kind == _S_IFDIR:
                    directories.append((name + "/", rel, None, entry.path, info))
                else:
                    raise _non_regular_error(entry.path, info.st_mode)
    except OSError as error:
        raise _stat_error(directory, error) from None
    totals[0], totals[1] = total, newest
    return files, directories


def _walk(
    top: str,
    prefix: str,
    top_stat: os.stat_result,
    excludes: Excludes,
    *,
    rels: list[str],
    keys: bytearray,
) -> tuple[int, int | None]:
    """Append every regular file below directory `top` in path byte order, refusing loops.

    Directories are walked depth first, each one's entries sorted: the files come out in
    the order of a sort of whole paths without one (a sort of 1M paths holds a second
    object per file meanwhile). A directory without subdirectories (most of a large tree)
    is appended in one go, in C. Symlinks are followed. Returns the files' total size and
    newest mtime, summed where each stat result is at hand.
    """
    before = len(rels)
    totals = [0, _NO_MTIME]
    append, extend = rels.append, keys.extend
    stack: list[tuple[Iterator[_Entry], tuple[tuple[int, int, str], ...]]] = []

    def enter(directory: str, prefix: str, ancestors: tuple[tuple[int, int, str], ...]) -> None:
        files, directories = _scan(directory, prefix, excludes, totals)
        if directories:
            entries: list[_Entry] = [*files, *directories]
            _sort(entries)
            stack.append((iter(entries), ancestors))
        else:
            _sort(files)
            rels.extend(map(_SECOND, files))
            extend(b"".join(map(_THIRD, files)))

    # Each pending directory carries its ancestors' (device, inode, path): a directory equal
    # to one of its ancestors is a loop (through a symlink or a bind mount).
    enter(top, prefix, ((top_stat.st_dev, top_stat.st_ino, top),))
    while stack:
        entries, ancestors = stack[-1]
        for entry in entries:
            if entry[2] is not None:
                append(entry[1])
                extend(entry[2])
                continue
            _, rel, _, path, info = entry  # a directory's entry
            for ancestor_device, ancestor_inode, where in ancestors:
                if ancestor_device == info.st_dev and ancestor_inode == info.st_ino:
                    raise HashError(
                        f"symlink loop at {path}: it leads back to {where};"
                        f" remove the link {EXCLUDE_HINT}"
                    )
            enter(path, rel + "/", (*ancestors, (info.st_dev, info.st_ino, path)))
            break
        else:
            stack.pop()
    return totals[0], (totals[1] if len(rels) > before else None)


def _glob_base(pattern: str) -> str:
    """Return the leading directories of `pattern` that contain no glob magic."""
    parts = pattern.split("/")
    literal: list[str] = []
    for part in parts[:-1]:
        if _GLOB_MAGIC.search(part):
            break
        literal.append(part)
    base = "/".join(literal)
    return "/" if base == "" and pattern.startswith("/") else base


def _collect_glob(pattern: str, excludes: Excludes, found: dict[str, bytes]) -> tuple[int, int]:
    """Add the files `pattern` matches to `found` (path -> key); return their size and newest.

    `**` and overlapping matches can reach a file twice; the dict keeps one.
    """
    import glob

    base = _glob_base(pattern)
    strip = 0 if base == "" else len(base) if base.endswith("/") else len(base) + 1
    matches = glob.glob(pattern, recursive=True)
    if not matches:
        raise HashError(
            f"glob {pattern!r} matches nothing (relative to {os.getcwd()}); check the pattern"
        )
    for match in matches:
        rel = (
            match[strip:] if base == "" or match.startswith(base) else os.path.relpath(match, base)
        )
        rel = rel.strip("/")
        if excludes.rel_path(rel):
            continue
        try:
            info = os.stat(match)
        except OSError as error:
            raise _stat_error(match, error) from None
        if stat.S_ISREG(info.st_mode):
            found[rel] = _key(info)
        elif stat.S_ISDIR(info.st_mode):
            rels: list[str] = []
            keys = bytearray()
            _walk(match, f"{rel}/" if rel else "", info, excludes, rels=rels, keys=keys)
            for index, below in enumerate(rels):
                found[below] = bytes(keys[index * KEY_BYTES : (index + 1) * KEY_BYTES])
        else:
            raise _non_regular_error(match, info.st_mode)
    stats = [unpack_stat_key(key) for key in found.values()]
    return sum(st[0] for st in stats), max((st[1] for st in stats), default=_NO_MTIME)


def _key(info: os.stat_result) -> bytes:
    return pack_stat_key(info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev)


# --- public -------------------------------------------------------------------------------


def classify(path: str) -> tuple[InputKind, os.stat_result | None]:
    """Return what `path` is ("file", "directory" or "glob") and its stat result (None: glob).

    A path that exists is never a glob, even if its name contains `[`.

    Raises:
        HashError: the path is missing, a broken link or loop, or not a regular file.
    """
    if _GLOB_MAGIC.search(path) and not os.path.lexists(path):
        return "glob", None
    try:
        info = os.stat(path)
    except OSError as error:
        raise _stat_error(path, error, top=True) from None
    if stat.S_ISREG(info.st_mode):
        return "file", info
    if stat.S_ISDIR(info.st_mode):
        return "directory", info
    raise _non_regular_error(path, info.st_mode)


def collect(
    path: str,
    kind: InputKind,
    info: os.stat_result | None,
    excludes: Excludes,
    *,
    found: list[str],
) -> Listing:
    """List the files of `path` as `classify` described it, appending to `found` meanwhile.

    `found` grows while a tree is walked, so a progress line can count it; it ends up
    being the listing's `rels`.

    Raises:
        HashError: a symlink loop, broken link, non-regular file, unreadable directory or a
            glob that matches nothing; names the path and the fix.
    """
    keys = bytearray()
    if info is None:  # a glob
        matched: dict[str, bytes] = {}
        size, newest = _collect_glob(path, excludes, matched)
        names = list(matched)
        names.sort(key=_path_bytes if _needs_encoding(names) else None)
        found.extend(names)
        for name in names:
            keys.extend(matched[name])
        base = _glob_base(path)
        return Listing(
            kind,
            found,
            keys,
            size,
            newest if found else None,
            (lambda rel: os.path.join(base, rel)) if base else str,
        )
    if kind == "file":
        found.append(os.path.basename(os.path.abspath(path)))
        keys.extend(_key(info))
        return Listing(kind, found, keys, info.st_size, info.st_mtime_ns, lambda rel: path)
    size, newest_walked = _walk(path, "", info, excludes, rels=found, keys=keys)
    return Listing(kind, found, keys, size, newest_walked, lambda rel: os.path.join(path, rel))


def list_files(path: str | os.PathLike[str], excludes: Sequence[str] = DEFAULT_EXCLUDES) -> Listing:
    """Return the files `hash_path(path, excludes=excludes)` would read, reading none.

    Raises:
        HashError: as `classify` and `collect`, with the same messages as hashing.
    """
    path = os.fspath(path)
    exclude = Excludes(excludes)
    kind, info = classify(path)
    return collect(path, kind, info, exclude, found=[])
