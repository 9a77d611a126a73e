"""The shared hash cache: one entry per file, so re-hashing unchanged data costs a `stat`.

An entry maps a file, reached from a hashed root (directory, glob or single file), to the
digest of its content, and is trusted only while the file's (size, mtime_ns, inode, device)
are unchanged. Entries of files modified within `_system.RACY_WINDOW_NS` of the moment
they were hashed are never stored (git's "racy clean" rule): such a file could change again
within the same timestamp tick without its mtime moving.

Storage: write-once segment files, no locks. The cache must work for many processes on many
nodes sharing one directory on NFS/Lustre/GPFS, where SQLite's WAL mode is unsafe and POSIX
byte-range locks (which its rollback journal relies on) are unreliable or slow. So:

- Entries of one root and algorithm live in one *shard* directory (the root's absolute path
  hashed), which holds immutable *segments*: a header line with a CRC32 and the lengths,
  then three columns in the order the files were listed: the NUL-separated paths, the
  packed stat keys and the raw digests. No object per file: a 1M-file segment is one
  `bytes` read from disk, and an unchanged tree is recognised by comparing the columns
  (one `memcmp` for all the keys), which keeps a re-hash in ~0.1 KiB per file.
- A process writes the entries it hashed as a new segment under a unique name (host, pid,
  random) through a temp file and `os.replace` (atomic on every POSIX filesystem, NFS
  included), so readers see whole segments or none.
- When a shard has `COMPACT_AFTER` segments or more, the process that next hashes that root
  writes one segment with the entries of the files it just saw and deletes the segments it
  read. Two processes compacting at once leave two equivalent segments; nothing is lost and
  every entry is validated against a fresh `stat` anyway, so a stale segment can only cost a
  re-hash, never a wrong digest.
- A segment whose CRC, header or body is wrong is skipped (and deleted at the next
  compaction); an unreadable or unwritable cache directory means hashing without the cache.
  Both warn once per process with `HashCacheWarning` and never fail the run.

Segments are not fsynced: losing one to a crash costs a re-hash, and the CRC catches a torn one.
Nothing is unpickled or unmarshalled: the columns are plain bytes, sliced. Older formats
live in other directories (`hashes/v<N>`) and are never read: their roots are re-hashed
once, silently.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
import warnings
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "COMPACT_AFTER",
    "STAT_KEY_BYTES",
    "CacheShard",
    "Entry",
    "HashCacheWarning",
    "default_cache_dir",
    "pack_stat_key",
    "unpack_stat_key",
]

#: An entry as `CacheShard.entries` shows it: the file's packed stat key, then its raw digest.
Entry = bytes
#: Length of a packed (size, mtime_ns, inode, device) stat key.
STAT_KEY_BYTES = 32
#: Pack (size, mtime_ns, inode, device) into a stat key, and back.
pack_stat_key = struct.Struct("<QqQQ").pack
unpack_stat_key = struct.Struct("<QqQQ").unpack

#: A shard with this many segments is compacted by the next process hashing its root.
COMPACT_AFTER = 8
#: Temp files older than this were left by a killed writer and are removed at compaction.
_STALE_TEMP_NS = 3600 * 1_000_000_000
_FORMAT = 3
_MAGIC = b"flexlock-hashcache"
_SEGMENT_SUFFIX = ".seg"
_TEMP_PREFIX = ".tmp-"
#: Paths encoded per slice when comparing or writing the path column: bounded memory.
_CHUNK = 8192


class HashCacheWarning(UserWarning):
    """The hash cache cannot be used as configured; hashing goes on without it."""


_warned: set[str] = set()


def _warn_once(kind: str, message: str) -> None:
    # Once per kind and process: a run hashing 50 inputs with a read-only cache should
    # say so once, not 50 times.
    if kind in _warned:
        return
    _warned.add(kind)
    warnings.warn(message, HashCacheWarning, stacklevel=4)


def default_cache_dir() -> Path:
    """Return the cache directory: `$FLEXLOCK_CACHE_DIR`, else the per-user cache directory.

    The per-user default is `$XDG_CACHE_HOME/flexlock` or `~/.cache/flexlock`
    (`%LOCALAPPDATA%\\flexlock\\cache` on Windows).
    """
    configured = os.environ.get("FLEXLOCK_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "flexlock" / "cache"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "flexlock"


def _shard_name(root: str, algorithm: str) -> str:
    return hashlib.sha256(_identity(root, algorithm)).hexdigest()[:32]


def _encode_paths(rels: Sequence[str]) -> Iterator[bytes]:
    """Yield the path column of `rels` as slices whose `b"\0".join` is the column."""
    for start in range(0, len(rels), _CHUNK):
        yield "\0".join(rels[start : start + _CHUNK]).encode("utf-8", "surrogateescape")


def _encode_segment(
    identity: bytes, rels: Sequence[str], keys: bytearray, digests: bytearray | memoryview
) -> list[bytes | bytearray | memoryview]:
    """Return a segment as the pieces to write in order (no copy of the columns)."""
    paths = _encode_paths(rels)
    separated: list[bytes | bytearray | memoryview] = []
    for index, piece in enumerate(paths):
        separated.extend((b"\0", piece) if index else (piece,))
    paths_length = sum(map(len, separated))
    body = [identity, *separated, keys, digests]
    crc = 0
    for part in body:
        crc = zlib.crc32(part, crc)
    digest_length = len(digests) // len(rels) if rels else 0
    header = b"%s %d %08x %d %d %d %d\n" % (
        _MAGIC,
        _FORMAT,
        crc,
        len(identity),
        paths_length,
        len(rels),
        digest_length,
    )
    return [header, *body]


class _Segment:
    """One segment's columns, as views into the bytes read from disk."""

    def __init__(self, data: bytes, identity: bytes) -> None:
        """Check and split `data`; raise ValueError if torn, corrupt or of another root."""
        header, newline, _ = data.partition(b"\n")
        fields = header.split(b" ")
        if not newline or len(fields) != 7 or fields[0] != _MAGIC or fields[1] != b"%d" % _FORMAT:
            raise ValueError("bad header")
        crc, identity_length, paths_length, count, digest_length = (
            int(fields[2], 16),
            *map(int, fields[3:]),
        )
        body = memoryview(data)[len(header) + 1 :]
        if len(body) != identity_length + paths_length + count * (STAT_KEY_BYTES + digest_length):
            raise ValueError("length mismatch")
        if zlib.crc32(body) != crc:
            raise ValueError("CRC mismatch")
        if body[:identity_length] != identity:
            raise ValueError("segment of another root (shard name collision)")
        start = identity_length + paths_length
        self.count, self.digest_length = count, digest_length
        self.paths = body[identity_length:start]
        self.keys = body[start : start + count * STAT_KEY_BYTES]
        self.digests = body[start + count * STAT_KEY_BYTES :]

    def lines_up(self, rels: Sequence[str]) -> bool:
        """Whether this segment lists exactly `rels`, in order (compared a slice at a time)."""
        if self.count != len(rels):
            return False
        position = 0
        for piece in _encode_paths(rels):
            end = position + len(piece)
            if self.paths[position:end] != piece:
                return False
            position = end + 1
        return position - 1 == len(self.paths) or not rels

    def rels(self) -> list[str]:
        if not self.count:
            return []
        return bytes(self.paths).decode("utf-8", "surrogateescape").split("\0")

    def entry(self, index: int) -> Entry:
        key = self.keys[index * STAT_KEY_BYTES : (index + 1) * STAT_KEY_BYTES]
        digest = self.digests[index * self.digest_length : (index + 1) * self.digest_length]
        return bytes(key) + bytes(digest)


_key_at = struct.Struct("<QqQQ").unpack_from


def _differing(cached: memoryview, keys: bytearray) -> list[int]:
    """Return the indices whose stat keys differ, comparing 256 keys at a time."""
    step = 256 * STAT_KEY_BYTES
    found: list[int] = []
    for start in range(0, len(keys), step):
        end = start + step
        if cached[start:end] != keys[start:end]:
            for at in range(start, min(end, len(keys)), STAT_KEY_BYTES):
                if cached[at : at + STAT_KEY_BYTES] != keys[at : at + STAT_KEY_BYTES]:
                    found.append(at // STAT_KEY_BYTES)
    return found


class CacheShard:
    """The cache entries of one hashed root for one algorithm.

    Open with `CacheShard.open`, `lookup` the digests of a listing, then `save` what was
    hashed. `entries` and `aligned` show the stored entries (for inspection and tests).
    """

    def __init__(
        self,
        directory: Path | None,
        root: str,
        algorithm: str,
        *,
        loaded: list[_Segment],
        segments: list[str],
        corrupt: bool = False,
    ) -> None:
        self.directory = directory  # None: the cache is unusable, `save` does nothing
        self.root = root
        self.algorithm = algorithm
        self._loaded = loaded  # oldest first
        self._segments = segments
        self._corrupt = corrupt
        #: Whether the last `lookup` found a segment listing exactly its files.
        self.lined_up = False

    @property
    def entries(self) -> dict[str, Entry]:
        """Every entry by relative path; a later segment's entry overrides an earlier one's."""
        entries: dict[str, Entry] = {}
        for segment in self._loaded:
            for index, rel in enumerate(segment.rels()):
                entries[rel] = segment.entry(index)
        return entries

    def aligned(self, rels: Sequence[str]) -> int | None:
        """Return the newest segment that lists exactly `rels` in order (None: none does).

        A segment is written in the order its files were listed, so while a root's files
        stay the same (their contents may change), the segment written with all of them
        lines up: its keys and digests are read by position, and only files whose entry
        there is stale are looked up in the (few) others.
        """
        for index in range(len(self._loaded) - 1, -1, -1):
            if self._loaded[index].lines_up(rels):
                return index
        return None

    def lookup(
        self, rels: Sequence[str], keys: bytearray, digest_length: int
    ) -> tuple[bytearray | memoryview, Sequence[int]]:
        """Return the raw digests of the files (`digest_length` bytes each) and the missing.

        A file's entry counts only while its stat key (`keys`, in the order of `rels`) is
        the one stored; the digests of missing files are left zero. Unchanged, the
        digests are the segment's own buffer (read-only), not a copy.
        """
        count = len(rels)
        self.lined_up = False
        if not self._loaded:
            return bytearray(count * digest_length), range(count)
        base = self.aligned(rels)
        self.lined_up = base is not None
        stale: Sequence[int] = range(count)
        if base is not None and self._loaded[base].digest_length == digest_length:
            segment = self._loaded[base]
            if segment.keys == keys:  # the usual case: nothing changed, one comparison
                return segment.digests, ()
            digests = bytearray(segment.digests)
            stale = _differing(segment.keys, keys)
        else:
            digests = bytearray(count * digest_length)
        # The map of the other segments, built only for files the base does not serve.
        others: dict[str, tuple[_Segment, int]] = {}
        for index, segment in enumerate(self._loaded):
            if index != base and segment.digest_length == digest_length:
                others.update((rel, (segment, at)) for at, rel in enumerate(segment.rels()))
        missing: list[int] = []
        for index in stale:
            found = others.get(rels[index])
            if found is not None:
                segment, at = found
                key = keys[index * STAT_KEY_BYTES : (index + 1) * STAT_KEY_BYTES]
                if segment.keys[at * STAT_KEY_BYTES : (at + 1) * STAT_KEY_BYTES] == key:
                    cached = segment.digests[at * digest_length : (at + 1) * digest_length]
                    digests[index * digest_length : (index + 1) * digest_length] = cached
                    continue
            missing.append(index)
        return digests, missing

    @classmethod
    def open(cls, root: str, algorithm: str, cache_dir: Path | None = None) -> CacheShard:
        """Load the entries cached for `root` (an absolute path or glob) and `algorithm`.

        Never raises for cache problems: an unusable cache gives an empty shard that does
        not save, after one `HashCacheWarning`.
        """
        base = (cache_dir or default_cache_dir()) / "hashes" / f"v{_FORMAT}"
        directory = base / _shard_name(root, algorithm)
        unusable = cls(None, root, algorithm, loaded=[], segments=[])
        try:
            names = sorted(
                path.name for path in directory.iterdir() if path.name.endswith(_SEGMENT_SUFFIX)
            )
        except FileNotFoundError:
            names = []
        except OSError as error:
            _warn_once("read", _unusable_message(directory, error))
            return unusable
        identity = _identity(root, algorithm)
        loaded: list[_Segment] = []
        read: list[str] = []
        corrupt = False
        # Names start with a nanosecond timestamp, so later segments override earlier ones.
        for name in names:
            try:
                data = (directory / name).read_bytes()
            except FileNotFoundError:  # compacted away by another process meanwhile
                continue
            except OSError as error:
                _warn_once("read", _unusable_message(directory, error))
                return unusable
            try:
                loaded.append(_Segment(data, identity))
            except (ValueError, UnicodeDecodeError) as error:
                corrupt = True
                _warn_once(
                    "corrupt",
                    f"flexlock: ignoring corrupt hash cache segment {directory / name} ({error});"
                    " the affected files are re-hashed and the segment is removed",
                )
            read.append(name)
        return cls(directory, root, algorithm, loaded=loaded, segments=read, corrupt=corrupt)

    @property
    def compaction_due(self) -> bool:
        """Whether the next `save` rewrites the shard (too many or corrupt segments)."""
        return self._corrupt or len(self._segments) >= COMPACT_AFTER

    def save(
        self,
        rels: Sequence[str],
        keys: bytearray,
        digests: bytearray | memoryview,
        hashed: Sequence[int],
        *,
        trusted_before: int,
        realign: bool = False,
    ) -> None:
        """Store the entries of the `hashed` files; when compaction is due, of all of them.

        Files modified at or after `trusted_before` are left out (the racy-clean rule).
        Compaction also forgets deleted files. `realign` asks for it now: the files no
        longer line up with any segment (one was added or removed), and until a segment
        lists them again every lookup goes through the full map (see `aligned`).
        Never raises for cache problems (warns once instead).
        """
        directory = self.directory
        if directory is None:
            return
        compact = self.compaction_due or realign
        chosen: Sequence[int] = range(len(rels)) if compact else hashed
        trusted: Sequence[int] = chosen
        if any(_key_at(keys, i * STAT_KEY_BYTES)[1] >= trusted_before for i in chosen):
            trusted = [i for i in chosen if _key_at(keys, i * STAT_KEY_BYTES)[1] < trusted_before]
        if not trusted and not (compact and self._segments):
            return  # nothing to store and nothing to replace
        if len(trusted) != len(rels):
            rels, keys, digests = _subset(rels, keys, digests, trusted)
        try:
            _write_segment(
                directory,
                _encode_segment(_identity(self.root, self.algorithm), rels, keys, digests),
            )
        except OSError as error:
            _warn_once("write", _unusable_message(directory, error))
            return
        if compact:
            _remove_segments(directory, self._segments)
            self._segments = []
            self._corrupt = False


def _identity(root: str, algorithm: str) -> bytes:
    return f"{algorithm}\0{root}".encode("utf-8", "surrogateescape")


def _subset(
    rels: Sequence[str], keys: bytearray, digests: bytearray | memoryview, indices: Sequence[int]
) -> tuple[list[str], bytearray, bytearray]:
    length = len(digests) // len(rels) if rels else 0
    sub_keys, sub_digests = bytearray(), bytearray()
    for index in indices:
        sub_keys += keys[index * STAT_KEY_BYTES : (index + 1) * STAT_KEY_BYTES]
        sub_digests += digests[index * length : (index + 1) * length]
    return [rels[index] for index in indices], sub_keys, sub_digests


def _write_segment(directory: Path, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
    """Publish `data` as a new segment: temp file, then an atomic rename to a unique name."""
    directory.mkdir(parents=True, exist_ok=True)
    # os.uname/os.urandom rather than socket/secrets: their imports cost a fresh process
    # more than the whole write of a one-entry segment.
    host = os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", "")
    unique = f"{host}-{os.getpid()}-{os.urandom(4).hex()}"
    temp = directory / f"{_TEMP_PREFIX}{unique}"
    try:
        with temp.open("xb") as stream:
            stream.writelines(pieces)
        temp.replace(directory / f"{time.time_ns():020d}-{unique}{_SEGMENT_SUFFIX}")
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _remove_segments(directory: Path, names: list[str]) -> None:
    """Delete compacted segments and temp files that killed writers left behind."""
    now = time.time_ns()
    try:
        for name in names:
            # Another compacting process may have removed it first; that is fine.
            (directory / name).unlink(missing_ok=True)
        with os.scandir(directory) as scan:
            for entry in scan:
                if entry.name.startswith(_TEMP_PREFIX) and (
                    now - entry.stat().st_mtime_ns > _STALE_TEMP_NS
                ):
                    Path(entry.path).unlink(missing_ok=True)
    except OSError:
        pass  # best effort: a leftover segment is merely re-read, a temp file never read


def _unusable_message(directory: Path, error: OSError) -> str:
    return (
        f"flexlock: the hash cache at {directory} is not usable ({error.strerror or error});"
        " hashing without it. Set FLEXLOCK_CACHE_DIR to a writable directory to re-enable it."
    )
