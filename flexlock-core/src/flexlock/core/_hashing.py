"""Content hashes of data inputs (a file, a directory or a glob), recomputable with coreutils.

A single file's hash is the digest of its bytes (`sha256sum`'s output). A directory's or a
glob's hash is the digest of its *manifest*: one `sha256sum`-style line per regular file,
`<hex digest>  <path relative to the root>\\n`, in byte order of the UTF-8 (surrogateescape)
encoded paths, i.e. exactly what

    find -L . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 -r sha256sum -- | sha256sum

prints inside the directory (docs/hashing.md gives the recipe with the default excludes).
Symlinks are followed (pulled data may be a symlink farm); loops, broken links and
non-regular files are errors that name the path.

Speed (benchmarks/bench_hashing.py): files at least `PARALLEL_MIN_FILE_BYTES` long are hashed
by a thread pool (hashlib releases the GIL while reading and hashing large buffers); smaller
ones are hashed in the calling thread meanwhile, because for them per-file Python work holds
the GIL and a pool only adds hand-offs. Reads go through one reused buffer per thread
(`os.readv` into a `bytearray`, no allocation per chunk). The hash cache (`_hashcache`) turns
an unchanged file into one `stat`.
"""

# Paths stay `str` on purpose (ruff PTH off): a Path object per file costs more than the
# `stat` it wraps on a 1M-file tree, and surrogate-escaped names round-trip as plain str.
# ruff: noqa: PTH100, PTH109, PTH114, PTH115, PTH116, PTH118, PTH119, PTH207

from __future__ import annotations

import errno
import fnmatch
import hashlib
import operator
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING, Protocol, TextIO

from flexlock.core._errors import HashError
from flexlock.core._hashcache import (
    RACY_WINDOW_NS,
    STAT_KEY_BYTES,
    CacheShard,
    Entry,
    pack_stat_key,
    unpack_stat_key,
)
from flexlock.core._model import DataRecord

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = [
    "DEFAULT_EXCLUDES",
    "available_algorithms",
    "hash_manifest",
    "hash_path",
    "hash_path_with_manifest",
    "parse_manifest",
    "tree_manifest",
]

#: Names skipped at every depth of a directory or glob unless `excludes=` says otherwise:
#: version-control metadata, Python bytecode caches, flexlock's own state and macOS Finder
#: files, none of which is data and all of which differ between copies of the same data.
DEFAULT_EXCLUDES: tuple[str, ...] = (".git", ".hg", ".svn", "__pycache__", ".flexlock", ".DS_Store")

#: Read buffer per thread; 1 MiB amortises the per-call cost of readv and hashlib.update.
BUFFER_BYTES = 1 << 20
#: Files at least this long go to the thread pool (measured: benchmarks/results/hashing.md).
PARALLEL_MIN_FILE_BYTES = 256 << 10
#: A progress line appears on a terminal stderr once hashing has taken this long.
PROGRESS_AFTER_SECONDS = 2.0

# Algorithms every CPython has; each has a coreutils-style tool (sha256sum, sha512sum,
# b2sum for blake2b) except sha3_256 and blake2s, whose manifest format is the same.
_HASHLIB_ALGORITHMS = ("sha256", "sha512", "sha3_256", "blake2b", "blake2s")
# Algorithm -> the import that provides it and the extra that installs it.
_OPTIONAL_ALGORITHMS = {"blake3": ("blake3", 'pip install "flexlock-core[blake3]"')}
_S_IFMT, _S_IFREG, _S_IFDIR = stat.S_IFMT(0o177777), stat.S_IFREG, stat.S_IFDIR
_GLOB_MAGIC = re.compile(r"[*?[]")
_NO_MTIME = -(1 << 63)  # below any st_mtime_ns (a signed 64-bit count of nanoseconds)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_NON_REGULAR_KINDS = (
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


class _Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> object: ...
    def hexdigest(self) -> str: ...


# (path relative to the root, packed (size, mtime_ns, inode, device)): two items, as few as
# the lookup needs. A 100k-file walk measured ~10% faster than with the path to open, size
# and mtime in the tuple too; those are unpacked from the key for the few files hashed.
_File = tuple[str, bytes]


def available_algorithms() -> list[str]:
    """Return the hash algorithms usable here (hashlib ones, plus blake3 when installed)."""
    import importlib.util

    optional = [
        name
        for name, (module, _) in _OPTIONAL_ALGORITHMS.items()
        if importlib.util.find_spec(module) is not None
    ]
    return sorted([*_HASHLIB_ALGORITHMS, *optional])


def _hasher_factory(algorithm: str) -> Callable[[], _Hasher]:
    if algorithm in _HASHLIB_ALGORITHMS:
        factory: Callable[[], _Hasher] = getattr(hashlib, algorithm)
        return factory
    if algorithm in _OPTIONAL_ALGORITHMS:
        module, install = _OPTIONAL_ALGORITHMS[algorithm]
        try:
            from blake3 import blake3
        except ImportError:
            raise HashError(
                f"hash algorithm {algorithm!r} needs the {module} package, which is not"
                f" installed: {install}"
            ) from None
        optional: Callable[[], _Hasher] = blake3  # typed here: blake3 may be absent for mypy
        return optional
    raise HashError(
        f"unknown hash algorithm {algorithm!r}; available here: {', '.join(available_algorithms())}"
    )


# --- reading ------------------------------------------------------------------------------

if sys.platform == "win32":  # pragma: no cover - no readv there; one copy per chunk

    def _readv(fd: int, buffers: Sequence[bytearray], /) -> int:
        data = os.read(fd, len(buffers[0]))
        buffers[0][: len(data)] = data
        return len(data)
else:
    _readv = os.readv


_thread_state = threading.local()


def _thread_buffer() -> tuple[bytearray, memoryview]:
    try:
        buffers: tuple[bytearray, memoryview] = _thread_state.buffers
    except AttributeError:
        buffer = bytearray(BUFFER_BYTES)
        buffers = _thread_state.buffers = (buffer, memoryview(buffer))
    return buffers


def _hash_file(
    path: str, factory: Callable[[], _Hasher], on_chunk: Callable[[int], None] | None = None
) -> tuple[str, int]:
    """Return the hex digest and length of the file at `path`, streamed through one buffer."""
    buffer, view = _thread_buffer()
    hasher = factory()
    total = 0
    try:
        fd = os.open(path, _OPEN_FLAGS)
        try:
            while count := _readv(fd, (buffer,)):
                hasher.update(view[:count])
                total += count
                if on_chunk is not None:
                    on_chunk(count)
        finally:
            os.close(fd)
    except OSError as error:
        raise _read_error(path, error) from None
    return hasher.hexdigest(), total


# --- errors -------------------------------------------------------------------------------

_EXCLUDE_HINT = "or pass its name in excludes= (see docs/hashing.md)"


def _read_error(path: str, error: OSError) -> HashError:
    if error.errno in (errno.EACCES, errno.EPERM):
        return HashError(f"cannot read {path}: permission denied; make it readable {_EXCLUDE_HINT}")
    if error.errno == errno.ENOENT:
        return HashError(f"{path} disappeared while being hashed; hash again once writers are done")
    if error.errno == errno.EISDIR:
        return HashError(f"{path} became a directory while being hashed; hash again")
    return HashError(
        f"cannot read {path}: {error.strerror or error}; check the file {_EXCLUDE_HINT}"
    )


def _stat_error(path: str, error: OSError, *, top: bool = False) -> HashError:
    if error.errno == errno.ELOOP:
        return HashError(
            f"symlink loop at {path}: resolving it leads back to itself; fix or remove the link"
            f" {_EXCLUDE_HINT}"
        )
    if error.errno == errno.ENOENT and os.path.islink(path):
        target = os.readlink(path)
        return HashError(
            f"broken symlink {path} -> {target}: the target does not exist; fix or remove the link"
            f" {_EXCLUDE_HINT}"
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
            f"cannot access {path}: permission denied; fix its permissions {_EXCLUDE_HINT}"
        )
    return HashError(f"cannot access {path}: {error.strerror or error} {_EXCLUDE_HINT}")


def _non_regular_error(path: str, mode: int) -> HashError:
    kind = next((name for test, name in _NON_REGULAR_KINDS if test(mode)), "special file")
    return HashError(f"{path} is a {kind}, not a regular file; remove it {_EXCLUDE_HINT}")


# --- collecting files ---------------------------------------------------------------------


class _Excludes:
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
        return name in self.literal or (self.name_match is not None and bool(self.name_match(name)))

    def rel_path(self, rel: str) -> bool:
        """Whether any component of `rel`, or `rel` itself, is excluded."""
        if self.path_match is not None and self.path_match(rel):
            return True
        return any(self.name(part) for part in rel.split("/"))


def _walk(
    top: str,
    prefix: str,
    top_stat: os.stat_result,
    excludes: _Excludes,
    *,
    found: list[_File],
) -> tuple[int, int | None]:
    """Append every regular file below directory `top`, following symlinks and refusing loops.

    Returns the files' total size and newest mtime, summed here where each stat result is
    at hand: a second pass over 100k file tuples measured ~50 ms.
    """
    literal, name_match, path_match = excludes.literal, excludes.name_match, excludes.path_match
    total, newest, before = 0, _NO_MTIME, len(found)
    # Each pending directory carries its ancestors' (device, inode, path): a directory equal
    # to one of its ancestors is a loop (through a symlink or a bind mount).
    stack: list[tuple[str, str, tuple[tuple[int, int, str], ...]]] = [
        (top, prefix, ((top_stat.st_dev, top_stat.st_ino, top),))
    ]
    while stack:
        directory, prefix, ancestors = stack.pop()
        try:
            # Each entry is stat'ed as it is read, not after listing the whole directory:
            # measured ~15% faster on 100k files (the entry is still in the CPU caches).
            # An OSError here is the directory's: an entry's own becomes a HashError below.
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
                        found.append((rel, pack_stat_key(size, mtime, info.st_ino, info.st_dev)))
                        total += size
                        if mtime > newest:  # noqa: PLR1730 - a call to max() per file costs more
                            newest = mtime
                    elif kind == _S_IFDIR:
                        for ancestor_device, ancestor_inode, where in ancestors:
                            if ancestor_device == info.st_dev and ancestor_inode == info.st_ino:
                                raise HashError(
                                    f"symlink loop at {entry.path}: it leads back to {where};"
                                    f" remove the link {_EXCLUDE_HINT}"
                                )
                        below = (*ancestors, (info.st_dev, info.st_ino, entry.path))
                        stack.append((entry.path, rel + "/", below))
                    else:
                        raise _non_regular_error(entry.path, info.st_mode)
        except OSError as error:
            raise _stat_error(directory, error) from None
    return total, (newest if len(found) > before else None)


def _file(rel: str, info: os.stat_result) -> _File:
    """Describe one regular file (outside the walk's inlined fast path)."""
    return (rel, pack_stat_key(info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev))


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


def _collect_glob(pattern: str, excludes: _Excludes, found: list[_File]) -> None:
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
            found.append(_file(rel, info))
        elif stat.S_ISDIR(info.st_mode):
            _walk(match, f"{rel}/" if rel else "", info, excludes, found=found)
        else:
            raise _non_regular_error(match, info.st_mode)


_REL = operator.itemgetter(0)


def _sort_key(file: _File) -> bytes:
    return file[0].encode("utf-8", "surrogateescape")


def _sort_by_path_bytes(files: list[_File]) -> None:
    """Sort files by the bytes of their relative paths (what `LC_ALL=C sort` does)."""
    try:
        # Without surrogate escapes (names that are not UTF-8), code point order is UTF-8
        # byte order, so the names sort as they are, without an encoded copy each.
        "\0".join([file[0] for file in files]).encode()
    except UnicodeEncodeError:
        files.sort(key=_sort_key)
    else:
        files.sort(key=_REL)


def _classify(path: str) -> tuple[str, os.stat_result | None]:
    """Return what `path` is ("file", "directory" or "glob") and its stat result."""
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


def _collect(
    path: str,
    kind: str,
    info: os.stat_result | None,
    excludes: _Excludes,
    *,
    found: list[_File],
) -> tuple[list[_File], tuple[int, int | None], Callable[[str], str]]:
    """Return the files of `path`, sorted by the bytes of their relative paths, each once,
    their total size and newest mtime, and how to get a file's path from its relative one."""
    if info is None:  # a glob
        _collect_glob(path, excludes, found)
        # `**` and overlapping matches can reach a file twice; keep one.
        files = list({file[0]: file for file in found}.values())
        stats = [unpack_stat_key(file[1]) for file in files]
        totals = (sum(st[0] for st in stats), max((st[1] for st in stats), default=None))
        base = _glob_base(path)
        _sort_by_path_bytes(files)
        return files, totals, (lambda rel: os.path.join(base, rel)) if base else str
    if kind == "file":
        files = [_file(os.path.basename(os.path.abspath(path)), info)]
        return files, (info.st_size, info.st_mtime_ns), lambda rel: path
    totals = _walk(path, "", info, excludes, found=found)
    files = found
    _sort_by_path_bytes(files)
    return files, totals, lambda rel: os.path.join(path, rel)


# --- progress -----------------------------------------------------------------------------


def _human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class _Progress:
    """A progress line on a terminal, drawn by a daemon thread once hashing takes a while."""

    def __init__(self, label: str, stream: TextIO, found: list[_File]) -> None:
        self.label = label
        self.stream = stream
        self.found = found  # grows during the scan; read-only here
        self.files_total = 0
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0
        self.hashing = False
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.shown = False
        self.stop_event = threading.Event()
        if PROGRESS_AFTER_SECONDS <= 0:  # drawn at once, so a test sees it deterministically
            self._draw()
        self.thread = threading.Thread(target=self._run, name="flexlock-hash-progress", daemon=True)
        self.thread.start()

    def add(self, files: int, nbytes: int) -> None:
        with self.lock:
            self.files_done += files
            self.bytes_done += nbytes

    def chunk(self, nbytes: int) -> None:
        self.add(0, nbytes)

    def _line(self) -> str:
        if not self.hashing:
            return f"flexlock: scanning {self.label}: {len(self.found):,} files"
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (
            f"flexlock: hashing {self.label}: {self.files_done:,}/{self.files_total:,} files,"
            f" {_human_bytes(self.bytes_done)}/{_human_bytes(self.bytes_total)},"
            f" {_human_bytes(self.bytes_done / elapsed)}/s"
        )

    def _draw(self) -> None:
        try:
            self.stream.write(f"\r{self._line()}\x1b[K")
            self.stream.flush()
            self.shown = True
        except (OSError, ValueError):  # terminal gone or stream closed: progress is optional
            self.stop_event.set()

    def _run(self) -> None:
        if self.stop_event.wait(PROGRESS_AFTER_SECONDS):
            return
        while not self.stop_event.is_set():
            self._draw()
            self.stop_event.wait(0.25)

    def close(self) -> None:
        self.stop_event.set()
        self.thread.join()
        if self.shown:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


def _wants_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


# --- hashing ------------------------------------------------------------------------------


def _default_workers() -> int:
    # The CPUs this process may run on (a Slurm job's allocation), not the node's count.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1  # pragma: no cover - macOS, Windows


class _Hashed:
    """The files of one input, their digests, and what kind of input it was.

    Digests are ASCII hex `bytes`, as the cache stores them, and the manifest is built
    as the bytes that are hashed: no str object per file on a warm re-hash.
    """

    def __init__(
        self,
        kind: str,
        files: list[_File],
        digests: list[bytes],
        algorithm: str,
        totals: tuple[int, int | None],
    ) -> None:
        self.kind = kind
        self.files = files
        self.digests = digests
        self.algorithm = algorithm
        self.size, self.newest = totals
        self.rels = [file[0] for file in files]  # one list for the cache lookup and the manifest
        self._manifest: bytes | None = None

    def manifest_bytes(self) -> bytes:
        if self._manifest is None:
            rels = self.rels
            names = "\0".join(rels)
            if "\\" in names or "\n" in names or "\r" in names:
                lines = map(_manifest_line, (digest.decode() for digest in self.digests), rels)
                self._manifest = "".join(lines).encode("utf-8", "surrogateescape")
            else:
                paths = names.encode("utf-8", "surrogateescape").split(b"\0") if rels else []
                # Flattened (digest, "  ", path, "\n") runs: one join in C, nothing per line.
                runs = zip(self.digests, repeat(b"  "), paths, repeat(b"\n"))
                self._manifest = b"".join(chain.from_iterable(runs))
        return self._manifest

    def manifest(self) -> str:
        return self.manifest_bytes().decode("utf-8", "surrogateescape")

    def record(self) -> DataRecord:
        if self.kind == "file":
            digest = self.digests[0].decode()
            return DataRecord(f"{self.algorithm}:{digest}", self.size, None, self.newest)
        hasher = _hasher_factory(self.algorithm)()
        hasher.update(self.manifest_bytes())
        return DataRecord(
            f"{self.algorithm}:{hasher.hexdigest()}", self.size, len(self.files), self.newest
        )


def _hash_input(
    path: str | os.PathLike[str],
    *,
    algorithm: str,
    excludes: Sequence[str],
    use_cache: bool,
    workers: int | None,
    progress: bool | None,
) -> _Hashed:
    path = os.fspath(path)
    factory = _hasher_factory(algorithm)
    exclude = _Excludes(excludes)
    started_ns = time.time_ns()
    kind, info = _classify(path)
    shard = CacheShard.open(f"{kind}:{os.path.abspath(path)}", algorithm) if use_cache else None
    found: list[_File] = []
    meter = _Progress(path, sys.stderr, found) if _wants_progress(progress) else None
    try:
        files, totals, locate = _collect(path, kind, info, exclude, found=found)
        hashed = _Hashed(kind, files, [], algorithm, totals)
        hashed.digests = _digest_files(
            files,
            hashed.rels,
            locate,
            factory,
            shard=shard,
            started_ns=started_ns,
            workers=workers,
            meter=meter,
        )
    finally:
        if meter is not None:
            meter.close()
    return hashed


def _cached_digest(entries: dict[str, Entry], file: _File) -> bytes | None:
    cached = entries.get(file[0])
    return cached[STAT_KEY_BYTES:] if cached and cached.startswith(file[1]) else None


def _digest_files(
    files: list[_File],
    rels: list[str],
    locate: Callable[[str], str],
    factory: Callable[[], _Hasher],
    *,
    shard: CacheShard | None,
    started_ns: int,
    workers: int | None,
    meter: _Progress | None,
) -> list[bytes]:
    """Return the hex digest of every file, from the cache where its entry still matches."""
    # One tight loop after the walk: interleaved with the walk's stat calls, the lookups
    # measured ~10% slower (the kernel evicts the dict from the CPU caches in between).
    aligned = shard.aligned(rels) if shard is not None else None
    digests: list[bytes | None]
    if aligned is not None:
        # The usual case, the same files as last time: entries by position, no map to build.
        base, others = aligned
        digests = [
            cached[STAT_KEY_BYTES:] if cached.startswith(file[1]) else _cached_digest(others, file)
            for cached, file in zip(base, files, strict=True)
        ]
    else:
        entries: dict[str, Entry] = shard.entries if shard is not None else {}
        digests = [_cached_digest(entries, file) for file in files]
    missing = [index for index, digest in enumerate(digests) if digest is None]
    sizes = {index: unpack_stat_key(files[index][1])[0] for index in missing}
    large = [index for index in missing if sizes[index] >= PARALLEL_MIN_FILE_BYTES]
    small = [index for index in missing if sizes[index] < PARALLEL_MIN_FILE_BYTES]

    if meter is not None:
        meter.files_total = len(missing)
        meter.bytes_total = sum(sizes.values())
        meter.hashing = True
    on_chunk = meter.chunk if meter is not None else None

    def hash_one(index: int) -> bytes:
        path, size = locate(files[index][0]), sizes[index]
        digest, length = _hash_file(path, factory, on_chunk)
        if length != size:
            raise HashError(
                f"{path} changed while being hashed ({size} bytes when listed, {length}"
                " read); hash again once writers are done"
            )
        if meter is not None:
            meter.add(1, 0)
        return digest.encode()

    workers = _default_workers() if workers is None else max(1, workers)
    if len(large) >= 2 and workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        threads = min(workers, len(large))
        pool = ThreadPoolExecutor(threads, thread_name_prefix="flexlock-hash")
        # Each thread drains one shared iterator (next() on a list iterator is atomic):
        # one task per thread, not one per file, so the calling thread is not woken
        # (and the GIL not handed over) at every file; measured ~10% of 2,000 x 1 MiB.
        pending = iter(large)
        failed = threading.Event()

        def drain() -> list[tuple[int, bytes]]:
            done = []
            try:
                for index in pending:
                    if failed.is_set():
                        break
                    done.append((index, hash_one(index)))
            except BaseException:
                failed.set()  # the other threads stop at their next file
                raise
            return done

        try:
            futures: list[Future[list[tuple[int, bytes]]]] = [
                pool.submit(drain) for _ in range(threads)
            ]
            # Meanwhile the calling thread takes the small files (see module docstring).
            for index in small:
                digests[index] = hash_one(index)
            for future in futures:
                for index, digest in future.result():
                    digests[index] = digest
        except BaseException:
            failed.set()  # stop instead of hashing the remaining large files
            raise
        finally:
            pool.shutdown(wait=True)
    else:
        for index in missing:
            digests[index] = hash_one(index)

    complete: list[bytes] = digests  # type: ignore[assignment]  # every None was filled above
    if shard is not None:
        # Racy-clean rule: a file modified too close to `started_ns` is not cached.
        trusted_before = started_ns - RACY_WINDOW_NS

        def entries_of(indices: Sequence[int] | range) -> dict[str, Entry]:
            return {
                files[index][0]: files[index][1] + complete[index]
                for index in indices
                if unpack_stat_key(files[index][1])[1] < trusted_before
            }

        shard.save(
            entries_of(missing),
            lambda: entries_of(range(len(files))),
            realign=aligned is None and bool(files),
        )
    return complete


# --- manifests ----------------------------------------------------------------------------


def _manifest_line(digest: str, rel: str) -> str:
    if "\\" in rel or "\n" in rel or "\r" in rel:
        # GNU coreutils' rule: a leading backslash marks a line whose name is escaped.
        escaped = rel.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"\\{digest}  {escaped}\n"
    return f"{digest}  {rel}\n"


_UNESCAPES = {"\\\\": "\\", "\\n": "\n", "\\r": "\r"}
_ESCAPE = re.compile(r"\\.", re.DOTALL)
_HEX = re.compile(r"[0-9a-f]+")


def hash_manifest(text: str, *, algorithm: str = "sha256") -> str:
    """Return the `"<algorithm>:<hex>"` hash of a manifest (as `hash_path` records it).

    The manifest's bytes are its text encoded as UTF-8 with surrogateescape, so file names
    that are not valid UTF-8 hash as the bytes they are on disk.
    """
    hasher = _hasher_factory(algorithm)()
    hasher.update(text.encode("utf-8", "surrogateescape"))
    return f"{algorithm}:{hasher.hexdigest()}"


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
            rel = _ESCAPE.sub(lambda match: _UNESCAPES.get(match.group(), match.group()), rel)
        if rel in files:
            raise HashError(f"manifest line {number}: {rel!r} appears twice")
        files[rel] = digest
    return files


# --- public API ---------------------------------------------------------------------------


def hash_path(
    path: str | os.PathLike[str],
    *,
    algorithm: str = "sha256",
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool | None = None,
) -> DataRecord:
    """Hash a file, a directory or a glob pattern and return its `DataRecord`.

    Args:
        path: A file (hash = its bytes' digest, as `sha256sum` prints), a directory or a glob
            (`*`, `?`, `[...]`, `**`; hash = the digest of `tree_manifest(path)`).
        algorithm: One of `available_algorithms()`; recorded in the hash as `<algorithm>:`.
        excludes: Names (fnmatch patterns) skipped at any depth; a pattern containing `/`
            matches paths relative to the root instead. Ignored for a single file.
        use_cache: Reuse digests of files whose size, mtime, inode and device are unchanged.
        workers: Threads for large files; default: the CPUs this process may use.
        progress: Show a progress line on stderr; default: when stderr is a terminal.

    Raises:
        HashError: the path is missing or unreadable, contains a symlink loop, a broken link
            or a non-regular file, a glob matches nothing, or the algorithm is unknown or
            not installed. The message names the path and the fix.
    """
    hashed = _hash_input(
        path,
        algorithm=algorithm,
        excludes=excludes,
        use_cache=use_cache,
        workers=workers,
        progress=progress,
    )
    return hashed.record()


def tree_manifest(
    path: str | os.PathLike[str],
    *,
    algorithm: str = "sha256",
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool | None = None,
) -> str:
    """Return the manifest of a directory, glob or file: one `<hex>  <relative path>` line each.

    Lines are sorted by the bytes of the paths; names with a backslash, newline or carriage
    return are escaped as GNU coreutils does. For a directory or glob, `hash_path` records
    `hash_manifest` of this text. Arguments and errors are those of `hash_path`.
    """
    hashed = _hash_input(
        path,
        algorithm=algorithm,
        excludes=excludes,
        use_cache=use_cache,
        workers=workers,
        progress=progress,
    )
    return hashed.manifest()


def hash_path_with_manifest(
    path: str | os.PathLike[str],
    *,
    algorithm: str = "sha256",
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool | None = None,
) -> tuple[DataRecord, str]:
    """Return `hash_path(path)` and `tree_manifest(path)` from one walk of the data.

    Arguments and errors are those of `hash_path`.
    """
    hashed = _hash_input(
        path,
        algorithm=algorithm,
        excludes=excludes,
        use_cache=use_cache,
        workers=workers,
        progress=progress,
    )
    return hashed.record(), hashed.manifest()
