"""The shared hash cache: hits, invalidation, the racy-clean rule, corruption and concurrency."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from flexlock.core import HashCacheWarning, _hashcache, hash_path
from flexlock.core._hashcache import COMPACT_AFTER, CacheShard, default_cache_dir


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory of this test only, and warnings that may be issued again."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("FLEXLOCK_CACHE_DIR", str(directory))
    monkeypatch.setattr(_hashcache, "_warned", set())
    return directory


def _age(path: Path, seconds: int = 3600) -> None:
    """Back-date a file's mtime so it is outside the racy window (as settled data is)."""
    mtime = path.stat().st_mtime_ns - seconds * 1_000_000_000
    os.utime(path, ns=(mtime, mtime))


def _rewrite_keeping_stat(path: Path, content: bytes) -> None:
    """Change content in place, keeping size, inode and mtime: invisible to a stat."""
    info = path.stat()
    assert len(content) == info.st_size
    with path.open("r+b") as stream:
        stream.write(content)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def _segments(cache: Path) -> list[Path]:
    return sorted(cache.glob("hashes/v3/*/*.seg"))


def _sha(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def test_settled_file_digest_is_served_from_the_cache(tmp_path: Path) -> None:
    file = tmp_path / "data.bin"
    file.write_bytes(b"original")
    _age(file)
    hash_path(file)
    _rewrite_keeping_stat(file, b"ORIGINAL")
    # Same size, mtime, inode and device: the cache answers without reading the file.
    assert _sha(b"original") == hash_path(file).hash


def test_use_cache_false_reads_the_file(tmp_path: Path) -> None:
    file = tmp_path / "data.bin"
    file.write_bytes(b"original")
    _age(file)
    hash_path(file)
    _rewrite_keeping_stat(file, b"ORIGINAL")
    assert _sha(b"ORIGINAL") == hash_path(file, use_cache=False).hash


def test_racy_file_modified_within_the_window_is_rehashed(tmp_path: Path) -> None:
    file = tmp_path / "data.bin"
    file.write_bytes(b"original")  # mtime = now: inside the racy window
    hash_path(file)
    _rewrite_keeping_stat(file, b"ORIGINAL")  # same mtime tick, as a fast writer would leave it
    assert _sha(b"ORIGINAL") == hash_path(file).hash


def test_racy_file_is_not_written_to_the_cache(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "data.bin").write_bytes(b"fresh")
    hash_path(tmp_path / "data.bin")
    assert _segments(cache) == []


def _change_size(path: Path) -> None:
    info = path.stat()
    path.write_bytes(b"ORIGINAL!")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def _change_mtime(path: Path) -> None:
    _rewrite_keeping_stat(path, b"ORIGINAL")
    mtime = path.stat().st_mtime_ns + 1
    os.utime(path, ns=(mtime, mtime))


def _change_inode(path: Path) -> None:
    info = path.stat()
    replacement = path.with_name("replacement")
    replacement.write_bytes(b"ORIGINAL")
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    replacement.replace(path)  # both exist until here, so the inode differs


@pytest.mark.parametrize("change", [_change_size, _change_mtime, _change_inode])
def test_changed_stat_invalidates_the_entry(tmp_path: Path, change: object) -> None:
    file = tmp_path / "data.bin"
    file.write_bytes(b"original")
    _age(file)
    hash_path(file)
    change(file)  # type: ignore[operator]
    assert _sha(file.read_bytes()) == hash_path(file).hash


def test_directory_entries_are_cached_per_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a", "b"):
        (data / name).write_bytes(name.encode())
        _age(data / name)
    first = hash_path(data)
    _rewrite_keeping_stat(data / "a", b"A")
    (data / "b").write_bytes(b"bb")  # visible change: re-hashed
    expected = hash_path(data, use_cache=False)
    assert first != expected
    assert expected.hash != hash_path(data).hash  # "a" came from the cache, stale by design


def test_unchanged_tree_writes_no_new_segment(tmp_path: Path, cache: Path) -> None:
    file = tmp_path / "f"
    file.write_bytes(b"x")
    _age(file)
    hash_path(file)
    hash_path(file)
    assert len(_segments(cache)) == 1


def test_each_algorithm_has_its_own_entries(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_bytes(b"x")
    _age(file)
    hash_path(file)
    assert "sha512:" + hashlib.sha512(b"x").hexdigest() == hash_path(file, algorithm="sha512").hash


# --- robustness -------------------------------------------------------------------------------


def _cached_file(tmp_path: Path, cache: Path, content: bytes = b"original") -> Path:
    file = tmp_path / "data.bin"
    file.write_bytes(content)
    _age(file)
    hash_path(file)
    assert len(_segments(cache)) == 1
    return file


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="bit-flip"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"garbage\n" + data, id="bad-header"),
    ],
)
def test_corrupt_segment_is_ignored_with_a_warning(
    tmp_path: Path, cache: Path, damage: object
) -> None:
    file = _cached_file(tmp_path, cache)
    [segment] = _segments(cache)
    segment.write_bytes(damage(segment.read_bytes()))  # type: ignore[operator]
    _rewrite_keeping_stat(file, b"ORIGINAL")
    with pytest.warns(HashCacheWarning, match="corrupt hash cache segment"):
        record = hash_path(file)
    assert _sha(b"ORIGINAL") == record.hash


def test_corrupt_segment_is_replaced_by_the_next_save(tmp_path: Path, cache: Path) -> None:
    file = _cached_file(tmp_path, cache)
    [segment] = _segments(cache)
    segment.write_bytes(b"garbage")
    with pytest.warns(HashCacheWarning):
        hash_path(file)
    [rebuilt] = _segments(cache)
    assert segment != rebuilt


def test_corruption_warning_is_issued_once_per_process(tmp_path: Path, cache: Path) -> None:
    file = _cached_file(tmp_path, cache)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            for segment in _segments(cache):
                segment.write_bytes(b"garbage")
            hash_path(file)
    assert sum(issubclass(w.category, HashCacheWarning) for w in caught) == 1


def test_unusable_cache_directory_warns_once_and_still_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A regular file where the cache directory should be: unusable even for root.
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    monkeypatch.setenv("FLEXLOCK_CACHE_DIR", str(blocker))
    file = tmp_path / "f"
    file.write_bytes(b"x")
    _age(file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = [hash_path(file), hash_path(file)]
    assert [_sha(b"x")] * 2 == [record.hash for record in records]
    messages = [str(w.message) for w in caught if issubclass(w.category, HashCacheWarning)]
    assert len(messages) == 1
    assert "FLEXLOCK_CACHE_DIR" in messages[0]


def test_compaction_leaves_one_segment_of_current_entries(tmp_path: Path, cache: Path) -> None:
    data = _tree(tmp_path / "data", {"f0": b"0", "f1": b"1"})
    hash_path(data)
    for size in range(2, COMPACT_AFTER + 1):  # edits keep the file list: a segment each
        _tree(data, {"f0": b"x" * size})
        hash_path(data)
    assert len(_segments(cache)) == COMPACT_AFTER
    _tree(data, {"f1": b"edited"})
    hash_path(data)  # finds COMPACT_AFTER segments: compacts
    assert len(_segments(cache)) == 1
    entries = CacheShard.open(f"directory:{data}", "sha256").entries
    assert [b"x" * COMPACT_AFTER, b"edited"] == [
        (data / name).read_bytes() for name in sorted(entries)
    ]
    assert hash_path(data, use_cache=False) == hash_path(data)


def test_added_or_removed_file_rewrites_the_shard_in_the_new_order(
    tmp_path: Path, cache: Path
) -> None:
    # Otherwise no segment would line up with the files again until the next compaction,
    # and every re-hash until then would go through the full map.
    data = _tree(tmp_path / "data", {"a": b"1", "b": b"2"})
    hash_path(data)
    _tree(data, {"c": b"3"})
    hash_path(data)
    assert 1 == len(_segments(cache))
    assert CacheShard.open(f"directory:{data}", "sha256").aligned(["a", "b", "c"]) is not None
    (data / "a").unlink()
    hash_path(data)
    assert CacheShard.open(f"directory:{data}", "sha256").aligned(["b", "c"]) is not None


def test_stale_temp_files_of_killed_writers_are_swept(tmp_path: Path, cache: Path) -> None:
    file = _cached_file(tmp_path, cache)
    [segment] = _segments(cache)
    stale = segment.parent / ".tmp-deadhost-1-0000"
    stale.write_bytes(b"partial")
    os.utime(stale, ns=(0, 0))
    segment.write_bytes(b"garbage")  # forces a compaction, which sweeps
    with pytest.warns(HashCacheWarning):
        hash_path(file)
    assert not stale.exists()


def test_default_cache_dir_follows_flexlock_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLOCK_CACHE_DIR", "/somewhere/cache")
    assert Path("/somewhere/cache") == default_cache_dir()


def test_default_cache_dir_is_per_user_xdg_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEXLOCK_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/home/u/.xdg")
    assert Path("/home/u/.xdg/flexlock") == default_cache_dir()


# --- concurrency ------------------------------------------------------------------------------


_WORKER = textwrap.dedent("""
    import sys, warnings
    warnings.simplefilter("error")  # any cache warning fails the worker
    from flexlock.core._hashing import hash_path
    for _ in range(5):
        print(hash_path(sys.argv[1]).hash, flush=True)
""")


def _run_workers(data: Path, count: int) -> list[str]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        outputs.extend(out.split())
    return outputs


def _settled_tree(root: Path, count: int) -> Path:
    root.mkdir()
    for index in range(count):
        (root / f"sub{index % 7}").mkdir(exist_ok=True)
        path = root / f"sub{index % 7}" / f"f{index}.bin"
        path.write_bytes(os.urandom(1000 + index))
        _age(path)
    return root


def test_concurrent_processes_sharing_a_cache_agree(tmp_path: Path, cache: Path) -> None:
    data = _settled_tree(tmp_path / "data", 300)
    expected = hash_path(data, use_cache=False).hash
    assert [expected] * 6 * 5 == _run_workers(data, 6)
    shard = CacheShard.open(f"directory:{data}", "sha256")
    assert len(shard.entries) == 300


def test_concurrent_compactions_lose_nothing(tmp_path: Path, cache: Path) -> None:
    data = _settled_tree(tmp_path / "data", 120)
    expected = hash_path(data, use_cache=False).hash
    # Enough segments that every worker finds a compaction due and runs it at once.
    shard = CacheShard.open(f"directory:{data}", "sha256")
    for index in range(COMPACT_AFTER + 2):
        stale_key = bytearray(b"stale key".ljust(32))
        shard.save([f"gone{index}"], stale_key, bytearray(32), [0], trusted_before=1 << 62)
    assert [expected] * 6 * 5 == _run_workers(data, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        entries = CacheShard.open(f"directory:{data}", "sha256").entries
    assert sum(not rel.startswith("gone") for rel in entries) == 120


# --- reading entries by position ----------------------------------------------------------


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(exist_ok=True)
    for name, content in files.items():
        (root / name).write_bytes(content)
        _age(root / name)
    return root


def test_segment_listing_the_same_files_is_read_by_position(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a": b"1", "b": b"2", "c": b"3"})
    hash_path(data)

    shard = CacheShard.open(f"directory:{data}", "sha256")

    assert shard.aligned(["a", "b", "c"]) is not None
    assert shard.aligned(["a", "b"]) is None
    assert shard.aligned(["a", "b", "d"]) is None


def test_entry_of_a_changed_file_is_found_in_a_newer_segment(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a": b"1", "b": b"2", "c": b"3"})
    hash_path(data)
    _tree(data, {"b": b"two"})  # changed: its entry goes to a second segment
    hash_path(data)
    _rewrite_keeping_stat(data / "b", b"TWO")

    # b's entry in the first segment is stale, the second one's is current: served from it.
    assert hash_path(data, use_cache=False).hash != hash_path(data).hash
    _rewrite_keeping_stat(data / "b", b"two")
    assert hash_path(data, use_cache=False).hash == hash_path(data).hash
    assert 2 == len(_segments(_cache_dir(tmp_path)))


def test_added_file_is_hashed_and_the_others_still_come_from_the_cache(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a": b"1", "b": b"2"})
    hash_path(data)
    _tree(data, {"new": b"3"})
    _rewrite_keeping_stat(data / "a", b"X")

    record = hash_path(data)

    _rewrite_keeping_stat(data / "a", b"1")
    assert hash_path(data, use_cache=False).hash == record.hash  # a came from the cache


def _cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


# --- format changes -------------------------------------------------------------------------


def _v2_segment(root: str, rel: str, entry: bytes) -> bytes:
    """A segment as flexlock wrote it before the column format (marshal of two lists)."""
    import marshal
    import zlib

    body = marshal.dumps((root, "sha256", [rel], [entry]), 4)
    return b"flexlock-hashcache 2 %08x %d\n" % (zlib.crc32(body), len(body)) + body


def test_cache_of_the_previous_format_is_rebuilt_silently(tmp_path: Path, cache: Path) -> None:
    # An old cache holding a digest for the file's current stat key: the new format never
    # reads it (it would serve that digest), warns about nothing, and writes its own.
    data = _tree(tmp_path / "data", {"a": b"1"})
    info = (data / "a").stat()
    key = _hashcache.pack_stat_key(info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev)
    root = f"directory:{data}"
    identity = f"sha256\0{root}".encode()
    shard = cache / "hashes" / "v2" / hashlib.sha256(identity).hexdigest()[:32]
    shard.mkdir(parents=True)
    (shard / "00000000000000000001-old.seg").write_bytes(_v2_segment(root, "a", key + b"0" * 64))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        record = hash_path(data)

    assert record.hash == hash_path(data, use_cache=False).hash
    assert len(_segments(cache)) == 1
    assert CacheShard.open(root, "sha256").entries["a"][32:] == hashlib.sha256(b"1").digest()


def test_unchanged_tree_is_served_from_the_cache_by_position(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {f"f{index:03d}": b"%03d" % index for index in range(600)})
    hash_path(data)
    _rewrite_keeping_stat(data / "f599", b"XXX")  # invisible to a stat: served from the cache
    _tree(data, {"f300": b"new"})  # a visible change in the middle of the column

    record = hash_path(data)

    _rewrite_keeping_stat(data / "f599", b"599")
    assert record.hash == hash_path(data, use_cache=False).hash
