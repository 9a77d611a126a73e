"""Content hashes of data inputs (a file, a directory or a glob), recomputable with coreutils.

A single file's hash is the digest of its bytes (`sha256sum`'s output). A directory's or a
glob's hash is the digest of its *manifest* (`_manifest`): one `sha256sum`-style line per
regular file, in byte order of the paths, i.e. exactly what

    find -L . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 -r sha256sum -- | sha256sum

prints inside the directory (docs/hashing.md gives the recipe with the default excludes).
Which files an input is comes from `_walk`, each file's digest from `_digest`, the digests of
unchanged files from the hash cache (`_hashcache`, one `stat` per file); this module runs
them and hashes what the cache does not know.

Speed (benchmarks/bench_hashing.py): files at least `PARALLEL_MIN_FILE_BYTES` long are hashed
by a thread pool (hashlib releases the GIL while reading and hashing large buffers); smaller
ones are hashed in the calling thread meanwhile, because for them per-file Python work holds
the GIL and a pool only adds hand-offs.
"""

# The cache shard is keyed by `os.path.abspath`, not `Path.resolve()`: the root as given,
# without resolving its symlinks (ruff PTH100 off for that reason).
# ruff: noqa: PTH100

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from flexlock.core._digest import (
    Hasher,
    available_algorithms,
    digest_bytes,
    hash_file,
    hasher_factory,
)
from flexlock.core._errors import HashError
from flexlock.core._hash_progress import HashProgress
from flexlock.core._hashcache import STAT_KEY_BYTES, CacheShard, Entry, unpack_stat_key
from flexlock.core._manifest import hash_manifest, parse_manifest, render_manifest
from flexlock.core._model import DataRecord
from flexlock.core._system import RACY_WINDOW_NS, StatusLine, usable_cpus
from flexlock.core._walk import DEFAULT_EXCLUDES, Excludes, File, Listing, classify, collect

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = [
    "DEFAULT_EXCLUDES",
    "PARALLEL_MIN_FILE_BYTES",
    "available_algorithms",
    "hash_manifest",
    "hash_path",
    "hash_path_with_manifest",
    "parse_manifest",
    "tree_manifest",
]

#: Files at least this long go to the thread pool (measured: benchmarks/results/hashing.md).
PARALLEL_MIN_FILE_BYTES = 256 << 10


class _Hashed:
    """The files of one input and their digests.

    Digests are ASCII hex `bytes`, as the cache stores them, and the manifest is built
    as the bytes that are hashed: no str object per file on a warm re-hash.
    """

    def __init__(self, listing: Listing, algorithm: str) -> None:
        self.listing = listing
        self.algorithm = algorithm
        self.rels = [file[0] for file in listing.files]  # one list for the cache and manifest
        self.digests: list[bytes] = []
        self._manifest: bytes | None = None

    def manifest_bytes(self) -> bytes:
        if self._manifest is None:
            self._manifest = render_manifest(self.digests, self.rels)
        return self._manifest

    def manifest(self) -> str:
        return self.manifest_bytes().decode("utf-8", "surrogateescape")

    def record(self) -> DataRecord:
        listing, algorithm = self.listing, self.algorithm
        if listing.kind == "file":
            digest = self.digests[0].decode()
            return DataRecord(f"{algorithm}:{digest}", listing.size, None, listing.newest)
        digest = digest_bytes(self.manifest_bytes(), algorithm)
        return DataRecord(f"{algorithm}:{digest}", listing.size, len(listing.files), listing.newest)


def _hash_input(
    path: str | os.PathLike[str],
    *,
    algorithm: str,
    excludes: Sequence[str],
    use_cache: bool,
    workers: int | None,
    progress: bool | None,
) -> _Hashed:
    """Hash one input: the one body behind `hash_path`, `tree_manifest` and both at once."""
    path = os.fspath(path)
    factory = hasher_factory(algorithm)
    exclude = Excludes(excludes)
    started_ns = time.time_ns()
    kind, info = classify(path)
    shard = CacheShard.open(f"{kind}:{os.path.abspath(path)}", algorithm) if use_cache else None
    found: list[File] = []
    status = StatusLine(sys.stderr, enabled=progress)
    meter = HashProgress(path, status, found) if status.enabled else None
    try:
        hashed = _Hashed(collect(path, kind, info, exclude, found=found), algorithm)
        hashed.digests = _digest_files(
            hashed.listing,
            hashed.rels,
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


def _cached_digest(entries: dict[str, Entry], file: File) -> bytes | None:
    cached = entries.get(file[0])
    return cached[STAT_KEY_BYTES:] if cached and cached.startswith(file[1]) else None


def _digest_files(
    listing: Listing,
    rels: list[str],
    factory: Callable[[], Hasher],
    *,
    shard: CacheShard | None,
    started_ns: int,
    workers: int | None,
    meter: HashProgress | None,
) -> list[bytes]:
    """Return the hex digest of every file, from the cache where its entry still matches."""
    files, locate = listing.files, listing.locate
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
        meter.start_hashing(len(missing), sum(sizes.values()))
    on_chunk = meter.chunk if meter is not None else None

    def hash_one(index: int) -> bytes:
        path, size = locate(files[index][0]), sizes[index]
        digest, length = hash_file(path, factory, on_chunk)
        if length != size:
            raise HashError(
                f"{path} changed while being hashed ({size} bytes when listed, {length}"
                " read); hash again once writers are done"
            )
        if meter is not None:
            meter.add(1, 0)
        return digest.encode()

    workers = usable_cpus() if workers is None else max(1, workers)
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
