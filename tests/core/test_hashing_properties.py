"""Property tests: random trees hash by content and relative path, and nothing else."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flexlock.core import _hashing, hash_path, tree_manifest
from flexlock.core._hashing import parse_manifest
from flexlock.core._manifest import manifest_differences
from flexlock.core._walk import list_files

# Names that are legal on Linux and hard for a manifest: spaces, a backslash, a newline,
# non-ASCII, a leading dash. "." and ".." cannot occur (no dot alone), nor excluded names.
_NAME = st.text(alphabet=st.sampled_from("abcXYZ019 -_\\\né中"), min_size=1, max_size=8).filter(
    lambda name: name not in {".", ".."}
)
_PATH = st.lists(_NAME, min_size=1, max_size=3).map("/".join)
_TREE = st.dictionaries(_PATH, st.binary(max_size=64), min_size=1, max_size=12).filter(
    # A path cannot be both a file and a directory.
    lambda tree: not any(other.startswith(path + "/") for path in tree for other in tree)
)
_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@contextmanager
def _materialised(tree: dict[str, bytes]) -> Iterator[Path]:
    # A fresh directory per example: tmp_path is shared by all examples of one test.
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp) / "data"
        root.mkdir()
        for rel, content in tree.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
        yield root


def _digest(tree: dict[str, bytes], **options: object) -> str:
    with _materialised(tree) as root:
        return hash_path(root, use_cache=False, **options).hash  # type: ignore[arg-type]


@_SETTINGS
@given(_TREE)
def test_manifest_lists_exactly_the_files_and_their_digests(tree: dict[str, bytes]) -> None:
    expected = {rel: hashlib.sha256(content).hexdigest() for rel, content in tree.items()}
    with _materialised(tree) as root:
        assert expected == parse_manifest(tree_manifest(root, use_cache=False))


@_SETTINGS
@given(_TREE)
def test_manifest_is_in_the_byte_order_of_the_paths(tree: dict[str, bytes]) -> None:
    # The walk sorts each directory (a subdirectory as `name/`) instead of all paths at
    # the end; the result must still be `LC_ALL=C sort` order of the whole paths.
    with _materialised(tree) as root:
        listed = list(parse_manifest(tree_manifest(root, use_cache=False)))
    assert sorted(tree, key=lambda rel: rel.encode("utf-8", "surrogateescape")) == listed


def test_manifest_order_with_names_around_the_slash_and_not_utf8(tmp_path: Path) -> None:
    root = tmp_path / "data"
    names = ["a.txt", "a/b", "a/c/d", "a0", "a-b/c", "a b", "ab/x", "\udcff/y", "\udcfe", "é/z"]
    for rel in names:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode("utf-8", "surrogateescape"))
    for use_cache in (False, True, True):  # no cache, cold cache, warm cache
        listed = list(parse_manifest(tree_manifest(root, use_cache=use_cache)))
        assert sorted(names, key=lambda rel: rel.encode("utf-8", "surrogateescape")) == listed


@_SETTINGS
@given(_TREE)
def test_same_tree_gives_the_same_hash(tree: dict[str, bytes]) -> None:
    assert _digest(tree) == _digest(dict(reversed(tree.items())))


@_SETTINGS
@given(_TREE, st.data())
def test_renaming_a_file_changes_the_hash(tree: dict[str, bytes], data: st.DataObject) -> None:
    old = data.draw(st.sampled_from(sorted(tree)))
    new = data.draw(_PATH)
    renamed = {(new if rel == old else rel): content for rel, content in tree.items()}
    assume(new not in tree and len(renamed) == len(tree))
    assume(not any(o.startswith(p + "/") for p in renamed for o in renamed))
    assert _digest(tree) != _digest(renamed)


@_SETTINGS
@given(_TREE, st.data())
def test_swapping_two_contents_changes_the_hash(
    tree: dict[str, bytes], data: st.DataObject
) -> None:
    assume(len(tree) >= 2)
    first, second = data.draw(
        st.lists(st.sampled_from(sorted(tree)), min_size=2, max_size=2, unique=True)
    )
    assume(tree[first] != tree[second])
    swapped = {**tree, first: tree[second], second: tree[first]}
    assert _digest(tree) != _digest(swapped)


@_SETTINGS
@given(_TREE, st.data(), st.binary(max_size=64))
def test_changing_one_content_changes_the_hash(
    tree: dict[str, bytes], data: st.DataObject, content: bytes
) -> None:
    rel = data.draw(st.sampled_from(sorted(tree)))
    assume(tree[rel] != content)
    assert _digest(tree) != _digest({**tree, rel: content})


@_SETTINGS
@given(_TREE)
def test_cache_on_and_off_give_identical_records(tree: dict[str, bytes]) -> None:
    with _materialised(tree) as root:
        for path in root.rglob("*"):
            if path.is_file():  # settled files, so the cache stores and serves them
                os.utime(path, ns=(0, 1_000_000_000))
        without = hash_path(root, use_cache=False)
        assert [without] * 2 == [hash_path(root), hash_path(root)]


@_SETTINGS
@given(tree=_TREE)
def test_thread_pool_and_one_thread_give_identical_records(
    tree: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Route every file through the pool, whatever its size.
    monkeypatch.setattr(_hashing, "PARALLEL_MIN_FILE_BYTES", 0)
    with _materialised(tree) as root:
        serial = hash_path(root, use_cache=False, workers=1)
        assert serial == hash_path(root, use_cache=False, workers=3)


@_SETTINGS
@given(_TREE, st.lists(_PATH, max_size=4))
def test_manifest_differences_agree_with_the_parsed_manifest(
    tree: dict[str, bytes], others: list[str]
) -> None:
    # What verify --fast compares: the recorded manifest's paths against a listing's.
    with _materialised(tree) as root:
        manifest = tree_manifest(root, use_cache=False)
    listed = sorted(set(tree) ^ set(others), key=lambda rel: rel.encode("utf-8", "surrogateescape"))
    recorded = set(parse_manifest(manifest))
    expected = (tuple(sorted(recorded - set(listed))), tuple(sorted(set(listed) - recorded)))
    assert expected == manifest_differences(manifest, listed)


@_SETTINGS
@given(_TREE)
def test_listing_gives_the_paths_of_the_manifest_in_its_order(tree: dict[str, bytes]) -> None:
    with _materialised(tree) as root:
        manifest = tree_manifest(root, use_cache=False)
        listed = list_files(root).rels
    assert list(parse_manifest(manifest)) == listed
