"""Digests: the hash algorithms flexlock knows, and the hash of one file's bytes.

A file's digest is what `sha256sum` (or `sha512sum`, `b2sum`, `b3sum`) prints for it.
Reads go through one reused buffer per thread (`os.readv` into a `bytearray`, no allocation
per chunk), so a large file hashes at the speed of a bare `readinto` + `hashlib` loop, and
hashlib releases the GIL while it digests the buffer (threads scale; see `_hashing`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from flexlock.core._errors import HashError

__all__ = [
    "BUFFER_BYTES",
    "EXCLUDE_HINT",
    "Hasher",
    "available_algorithms",
    "digest_bytes",
    "hash_file",
    "hash_file_threaded",
    "hasher_factory",
    "idle_cpus",
]

#: A blake3 file at least this long is hashed by blake3's own threads over an mmap when
#: cores are idle (`idle_cpus`); below it the threads' start-up is not repaid.
THREADED_MIN_FILE_BYTES = 64 << 20

#: Read buffer per thread; 1 MiB amortises the per-call cost of readv and hashlib.update.
BUFFER_BYTES = 1 << 20
#: The end of every message about a file that cannot be hashed: the two ways out.
EXCLUDE_HINT = "or pass its name in excludes= (see docs/hashing.md)"

# Algorithms every CPython has; each has a coreutils-style tool (sha256sum, sha512sum,
# b2sum for blake2b) except sha3_256 and blake2s, whose manifest format is the same.
_HASHLIB_ALGORITHMS = ("sha256", "sha512", "sha3_256", "blake2b", "blake2s")
# Algorithm -> the import that provides it and the extra that installs it.
_OPTIONAL_ALGORITHMS = {"blake3": ("blake3", 'pip install "flexlock-core[blake3]"')}
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


class Hasher(Protocol):
    """What flexlock needs of a hash object: hashlib's and blake3's both fit."""

    @property
    def digest_size(self) -> int:
        """Length of the raw digest in bytes."""

    def update(self, data: bytes | memoryview, /) -> object:
        """Feed `data` into the digest."""

    def digest(self) -> bytes:
        """Return the raw digest of everything fed so far."""

    def hexdigest(self) -> str:
        """Return the digest of everything fed so far, in lowercase hex."""


def available_algorithms() -> list[str]:
    """Return the hash algorithms usable here (hashlib ones, plus blake3 when installed)."""
    import importlib.util

    optional = [
        name
        for name, (module, _) in _OPTIONAL_ALGORITHMS.items()
        if importlib.util.find_spec(module) is not None
    ]
    return sorted([*_HASHLIB_ALGORITHMS, *optional])


def hasher_factory(algorithm: str) -> Callable[[], Hasher]:
    """Return what makes a new hash object for `algorithm`.

    Raises:
        HashError: the algorithm is unknown, or optional and not installed (names the
            `pip install` that provides it).
    """
    if algorithm in _HASHLIB_ALGORITHMS:
        factory: Callable[[], Hasher] = getattr(hashlib, algorithm)
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
        optional: Callable[[], Hasher] = blake3  # typed here: blake3 may be absent for mypy
        return optional
    raise HashError(
        f"unknown hash algorithm {algorithm!r}; available here: {', '.join(available_algorithms())}"
    )


def digest_bytes(data: bytes, algorithm: str) -> str:
    """Return the hex digest of `data` with `algorithm`."""
    hasher = hasher_factory(algorithm)()
    hasher.update(data)
    return hasher.hexdigest()


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


def hash_file(
    path: str, factory: Callable[[], Hasher], on_chunk: Callable[[int], None] | None = None
) -> tuple[bytes, int]:
    """Return the raw digest and length of the file at `path`, streamed through one buffer.

    `on_chunk` is told the length of every chunk read (for a progress line).

    Raises:
        HashError: the file cannot be read; names the path and the fix.
    """
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
    return hasher.digest(), total


def idle_cpus() -> int:
    """Return how many of this process's CPUs are idle now: usable CPUs minus the load.

    The 1-minute load average counts runnable threads machine-wide, so on a shared node
    (or with the other workers of a task list busy) it leaves no core for extra threads.
    """
    from flexlock.core._system import usable_cpus

    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - no load average (Windows)
        return 0
    return max(0, int(usable_cpus() - load))


def hash_file_threaded(path: str, threads: int) -> tuple[bytes, int]:
    """Return the blake3 raw digest and length of `path`, hashed by `threads` over an mmap.

    Raises:
        HashError: the file cannot be read, or blake3 is not installed.
    """
    try:
        from blake3 import blake3
    except ImportError:
        raise HashError(
            f"hash algorithm 'blake3' needs the blake3 package, which is not installed:"
            f" {_OPTIONAL_ALGORITHMS['blake3'][1]}"
        ) from None
    hasher = blake3(max_threads=threads)
    try:
        length = Path(path).stat().st_size
        hasher.update_mmap(path)
    except OSError as error:
        raise _read_error(path, error) from None
    return hasher.digest(), length


def _read_error(path: str, error: OSError) -> HashError:
    if error.errno in (errno.EACCES, errno.EPERM):
        return HashError(f"cannot read {path}: permission denied; make it readable {EXCLUDE_HINT}")
    if error.errno == errno.ENOENT:
        return HashError(f"{path} disappeared while being hashed; hash again once writers are done")
    if error.errno == errno.EISDIR:
        return HashError(f"{path} became a directory while being hashed; hash again")
    return HashError(
        f"cannot read {path}: {error.strerror or error}; check the file {EXCLUDE_HINT}"
    )
