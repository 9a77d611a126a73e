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

import binascii
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from flexlock.core._digest import (
    THREADED_MIN_FILE_BYTES,
    Hasher,
    available_algorithms,
    digest_bytes,
    hash_file,
    hash_file_threaded,
    hasher_factory,
    idle_cpus,
)
from flexlock.core._errors import HashError
from flexlock.core._hash_progress import HashProgress
from flexlock.core._hashcache import CacheShard
from flexlock.core._manifest import hash_manifest, parse_manifest, render_manifest
from flexlock.core._model import DataRecord
from flexlock.core._system import RACY_WINDOW_NS, StatusLine, usable_cpus
from flexlock.core._walk import DEFAULT_EXCLUDES, KEY_BYTES, Excludes, Listing, classify, collect

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
_key_at = struct.Struct("<QqQQ").unpack_from


def _size(keys: bytearray, index: int) -> int:
    size: int = _key_at(keys, index * KEY_BYTES)[0]
    return size


#: Manifest lines rendered (and hashed) per slice: the whole manifest is never held for a
#: hash, only for `tree_manifest`.
_MANIFEST_CHUNK = 8192


class _Hashed:
    """The files of one input and their raw digests (one buffer, `digest_length` each).

    Raw, not hex: half the bytes, and no object per file; the manifest's hex is rendered a
    slice of files at a time, as the bytes that are hashed.
    """

    def __init__(self, listing: Listing, algorithm: str, factory: Callable[[], Hasher]) -> None:
        self.listing = listing
        self.algorithm = algorithm
        self.factory = factory
        self.digest_length: int = factory().digest_size
        self.digests: bytearray | memoryview = bytearray()

    def manifest_chunks(self) -> Iterator[bytes]:
        rels, digests, length = self.listing.rels, self.digests, self.digest_length
        width = 2 * length
        for start in range(0, len(rels), _MANIFEST_CHUNK):
            names = rels[start : start + _MANIFEST_CHUNK]
            hexes = binascii.hexlify(digests[start * length : (start + len(names)) * length])
            yield render_manifest(
                [hexes[at : at + width] for at in range(0, len(hexes), width)], names
            )

    def manifest(self) -> str:
        return b"".join(self.manifest_chunks()).decode("utf-8", "surrogateescape")

    def record(self, manifest: str | None = None) -> DataRecord:
        listing, algorithm = self.listing, self.algorithm
        if listing.kind == "file":
            digest = self.digests.hex()
            return DataRecord(f"{algorithm}:{digest}", listing.size, None, listing.newest)
        if manifest is not None:
            digest = digest_bytes(manifest.encode("utf-8", "surrogateescape"), algorithm)
        else:
            hasher = self.factory()
            for chunk in self.manifest_chunks():
                hasher.update(chunk)
            digest = hasher.hexdigest()
        return DataRecord(f"{algorithm}:{digest}", listing.size, len(listing.rels), listing.newest)


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
    found: list[str] = []
    status = StatusLine(sys.stderr, enabled=progress)
    meter = HashProgress(path, status, found) if status.enabled else None
    try:
        hashed = _Hashed(collect(path, kind, info, exclude, found=found), algorithm, factory)
        _digest_files(hashed, shard=shard, started_ns=started_ns, workers=workers, meter=meter)
    finally:
        if meter is not None:
            meter.close()
    return hashed


def _digest_files(
    hashed: _Hashed,
    *,
    shard: CacheShard | None,
    started_ns: int,
    workers: int | None,
    meter: HashProgress | None,
) -> None:
    """Fill `hashed.digests`, from the cache where a file's entry still matches."""
    listing, factory, length = hashed.listing, hashed.factory, hashed.digest_length
    rels, keys, locate = listing.rels, listing.keys, listing.locate
    if shard is not None:
        digests, missing = shard.lookup(rels, keys, length)
    else:
        digests, missing = bytearray(len(rels) * length), range(len(rels))
    hashed.digests = digests
    # No per-file map of sizes or list of the small files: on a cold 1M-file tree those
    # measured ~0.15 KiB per file; a size is unpacked from the keys where it is needed.
    large = [index for index in missing if _size(keys, index) >= PARALLEL_MIN_FILE_BYTES]

    if meter is not None:
        meter.start_hashing(len(missing), sum(_size(keys, index) for index in missing))
    on_chunk = meter.chunk if meter is not None else None

    # A big blake3 file alone (no pool busy with others) gets blake3's threads when cores
    # are idle; measured in benchmarks/results/hashing.md (threads vs one, loaded or not).
    threads = 1
    if hashed.algorithm == "blake3" and len(large) < 2:
        threads = min(idle_cpus(), usable_cpus() if workers is None else max(1, workers))

    def hash_one(index: int) -> None:
        path, size = locate(rels[index]), _key_at(keys, index * KEY_BYTES)[0]
        if threads > 1 and size >= THREADED_MIN_FILE_BYTES:
            digest, read = hash_file_threaded(path, threads)
            if on_chunk is not None:
                on_chunk(read)
        else:
            digest, read = hash_file(path, factory, on_chunk)
        if read != size:
            raise HashError(
                f"{path} changed while being hashed ({size} bytes when listed, {read}"
                " read); hash again once writers are done"
            )
        if meter is not None:
            meter.add(1, 0)
        # Same length, so the buffer never moves: safe from the pool's threads (GIL held).
        digests[index * length : (index + 1) * length] = digest

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

        def drain() -> None:
            try:
                for index in pending:
                    if failed.is_set():
                        break
                    hash_one(index)
            except BaseException:
                failed.set()  # the other threads stop at their next file
                raise

        try:
            futures: list[Future[None]] = [pool.submit(drain) for _ in range(threads)]
            # Meanwhile the calling thread takes the small files (see module docstring).
            for index in missing:
                if _size(keys, index) < PARALLEL_MIN_FILE_BYTES:
                    hash_one(index)
            for future in futures:
                future.result()
        except BaseException:
            failed.set()  # stop instead of hashing the remaining large files
            raise
        finally:
            pool.shutdown(wait=True)
    else:
        for index in missing:
            hash_one(index)

    if shard is not None:
        # Racy-clean rule: a file modified too close to `started_ns` is not cached.
        shard.save(
            rels,
            keys,
            digests,
            missing,
            trusted_before=started_ns - RACY_WINDOW_NS,
            realign=bool(rels) and not shard.lined_up,
        )


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
    manifest = hashed.manifest()
    return hashed.record(manifest), manifest
