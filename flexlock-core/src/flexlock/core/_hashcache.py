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
  hashed), which holds immutable *segments*: a header line with a CRC32 and length, then a
  `marshal`ed pair of lists (relative paths, entries).
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
`marshal` (not JSON) because loading 100k entries must cost a fraction of the `stat` calls it saves;
it is safe here because it cannot execute code and the CRC is checked before it runs.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import struct
import time
import warnings
import zlib
from collections.abc import Callable
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

#: An entry: the file's packed (size, mtime_ns, inode, device) when it was hashed (32 bytes,
#: `pack_stat_key`), then its hex digest in ASCII. One bytes object per file, checked with one
#: `startswith`: no tuples, so loading 100k entries creates nothing the cyclic GC must scan,
#: which measured a third of the cache's cost with (stat tuple, digest) pairs.
Entry = bytes
#: Length of the packed stat key at the start of an `Entry`.
STAT_KEY_BYTES = 32
#: Pack (size, mtime_ns, inode, device) into the stat key of an `Entry`, and back.
pack_stat_key = struct.Struct("<QqQQ").pack
unpack_stat_key = struct.Struct("<QqQQ").unpack

#: A shard with this many segments is compacted by the next process hashing its root.
COMPACT_AFTER = 8
#: Temp files older than this were left by a killed writer and are removed at compaction.
_STALE_TEMP_NS = 3600 * 1_000_000_000
_FORMAT = 2
_MAGIC = b"flexlock-hashcache"
# marshal format 4 is read and written by every supported Python (3.10-3.14), so nodes
# running different Pythons can share one cache.
_MARSHAL_VERSION = 4
_SEGMENT_SUFFIX = ".seg"
_TEMP_PREFIX = ".tmp-"


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
    identity = f"{algorithm}\0{root}".encode("utf-8", "surrogateescape")
    return hashlib.sha256(identity).hexdigest()[:32]


def _encode_segment(root: str, algorithm: str, entries: dict[str, Entry]) -> bytes:
    body = marshal.dumps((root, algorithm, list(entries), list(entries.values())), _MARSHAL_VERSION)
    header = b"%s %d %08x %d\n" % (_MAGIC, _FORMAT, zlib.crc32(body), len(body))
    return header + body


def _decode_segment(data: bytes, root: str, algorithm: str) -> tuple[list[str], list[Entry]]:
    """Return the paths and entries of a segment; raise ValueError if torn, corrupt or foreign."""
    header, newline, body = data.partition(b"\n")
    fields = header.split(b" ")
    if not newline or len(fields) != 4 or fields[0] != _MAGIC or fields[1] != b"%d" % _FORMAT:
        raise ValueError("bad header")
    if int(fields[3]) != len(body) or int(fields[2], 16) != zlib.crc32(body):
        raise ValueError("length or CRC mismatch")
    stored_root, stored_algorithm, paths, entries = marshal.loads(body)  # noqa: S302 - CRC-checked
    if stored_root != root or stored_algorithm != algorithm:
        raise ValueError("segment of another root (shard name collision)")
    if not isinstance(paths, list) or not isinstance(entries, list) or len(paths) != len(entries):
        raise ValueError("bad body")
    return paths, entries


class CacheShard:
    """The cache entries of one hashed root for one algorithm.

    `entries` maps a path relative to the root to its `Entry`; `aligned` serves the common
    case of an unchanged file list without building that map. Open with `CacheShard.open`,
    look entries up, then `save` what was hashed.
    """

    def __init__(
        self,
        directory: Path | None,
        root: str,
        algorithm: str,
        *,
        loaded: list[tuple[list[str], list[Entry]]],
        segments: list[str],
        corrupt: bool = False,
    ) -> None:
        self.directory = directory  # None: the cache is unusable, `save` does nothing
        self.root = root
        self.algorithm = algorithm
        self._loaded = loaded  # (paths, entries) of each segment, oldest first
        self._entries: dict[str, Entry] | None = None
        self._segments = segments
        self._corrupt = corrupt

    @property
    def entries(self) -> dict[str, Entry]:
        """Every entry by relative path; a later segment's entry overrides an earlier one's."""
        if self._entries is None:
            entries: dict[str, Entry] = {}
            for paths, values in self._loaded:
                entries.update(zip(paths, values, strict=True))  # built in C
            self._entries = entries
        return self._entries

    def aligned(self, paths: list[str]) -> tuple[list[Entry], dict[str, Entry]] | None:
        """Return a segment's entries in the order of `paths`, and the other segments' entries.

        A segment is written in the order its files were listed, so while a root's files
        stay the same (their contents may change), the segment written with all of them
        lists exactly `paths`: its entries are read by position (the newest such segment's),
        and only files whose entry there is stale need the map of the (few) others. None
        when no segment lines up. Every entry is still checked against the file's stat key,
        so which one is found first never matters.
        """
        candidates = [index for index, (listed, _) in enumerate(self._loaded) if listed == paths]
        if not candidates:
            return None
        base = candidates[-1]  # segments are read oldest first
        others: dict[str, Entry] = {}
        for index, (listed, values) in enumerate(self._loaded):
            if index != base:
                others.update(zip(listed, values, strict=True))
        return self._loaded[base][1], others

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
        loaded: list[tuple[list[str], list[Entry]]] = []
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
                loaded.append(_decode_segment(data, root, algorithm))
            except (ValueError, TypeError, EOFError, IndexError) as error:
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
        fresh: dict[str, Entry],
        live: Callable[[], dict[str, Entry]] | None = None,
        *,
        realign: bool = False,
    ) -> None:
        """Store `fresh` entries; when compaction is due, store `live()` and drop old segments.

        `live` returns every current entry of the root (the files just seen), so compaction
        also forgets deleted files. `realign` asks for that compaction now: the files no
        longer line up with any segment (one was added or removed), and until a segment
        lists them again every lookup goes through the full map (see `aligned`).
        Never raises for cache problems (warns once instead).
        """
        directory = self.directory
        if directory is None:
            return
        compact = (self.compaction_due or realign) and live is not None
        entries = live() if compact and live is not None else fresh
        if not entries and not (compact and self._segments):
            return  # nothing to store and nothing to replace
        try:
            _write_segment(directory, _encode_segment(self.root, self.algorithm, entries))
        except OSError as error:
            _warn_once("write", _unusable_message(directory, error))
            return
        if compact:
            _remove_segments(directory, self._segments)
            self._segments = []
            self._corrupt = False


def _write_segment(directory: Path, data: bytes) -> None:
    """Publish `data` as a new segment: temp file, then an atomic rename to a unique name."""
    directory.mkdir(parents=True, exist_ok=True)
    # os.uname/os.urandom rather than socket/secrets: their imports cost a fresh process
    # more than the whole write of a one-entry segment.
    host = os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", "")
    unique = f"{host}-{os.getpid()}-{os.urandom(4).hex()}"
    temp = directory / f"{_TEMP_PREFIX}{unique}"
    try:
        with temp.open("xb") as stream:
            stream.write(data)
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
