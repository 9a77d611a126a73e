"""Data hashing: files, directories and globs, the manifest format, symlinks and errors."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flexlock.core import DataRecord, HashError, available_algorithms, hash_path, tree_manifest
from flexlock.core._hashing import (
    DEFAULT_EXCLUDES,
    hash_manifest,
    hash_path_with_manifest,
    parse_manifest,
)
from flexlock.core._manifest import manifest_differences
from flexlock.core._walk import list_files
from tests._helpers import REPO_ROOT, has_executable, require_service


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def _documented_recipe() -> str:
    """The shell command of docs/hashing.md that recomputes a directory hash."""
    docs = (REPO_ROOT / "docs" / "hashing.md").read_text()
    block = docs.split("$ cd data/raw\n", 1)[1].split("```", 1)[0]
    return block.removeprefix("$ ").replace("\\\n", " ").strip()


def _recipe(directory: Path) -> str:
    """Run the documented coreutils recipe in `directory` and return its hex digest."""
    result = subprocess.run(
        ["bash", "-c", _documented_recipe()], cwd=directory, check=True, capture_output=True
    )
    return result.stdout.split()[0].decode()


# --- single files -----------------------------------------------------------------------------


@pytest.mark.skipif(not has_executable("sha256sum"), reason="GNU coreutils sha256sum not on PATH")
def test_file_hash_equals_sha256sum(tmp_path: Path) -> None:
    file = tmp_path / "data.bin"
    file.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # spans several read buffers
    expected = subprocess.run(["sha256sum", str(file)], check=True, capture_output=True, text=True)
    assert "sha256:" + expected.stdout.split()[0] == hash_path(file).hash


def test_file_record_has_size_mtime_and_no_file_count(tmp_path: Path) -> None:
    file = tmp_path / "data.csv"
    content = b"a,b\n1,2\n"
    file.write_bytes(content)
    expected = DataRecord(f"sha256:{_sha256(content)}", 8, None, file.stat().st_mtime_ns)
    assert expected == hash_path(file)


def test_empty_file_hashes_empty_input(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert f"sha256:{_sha256(b'')}" == hash_path(tmp_path / "empty").hash


@pytest.mark.parametrize("algorithm", ["sha512", "sha3_256", "blake2b", "blake2s"])
def test_hashlib_algorithms_are_recorded_with_their_name(tmp_path: Path, algorithm: str) -> None:
    (tmp_path / "f").write_bytes(b"payload")
    expected = f"{algorithm}:{hashlib.new(algorithm, b'payload').hexdigest()}"
    assert expected == hash_path(tmp_path / "f", algorithm=algorithm).hash


def test_blake3_hash_matches_blake3_package(tmp_path: Path) -> None:
    blake3 = pytest.importorskip("blake3", reason="blake3 not installed (flexlock-core[blake3])")
    (tmp_path / "f").write_bytes(b"x" * (2 * 1024 * 1024 + 5))
    expected = f"blake3:{blake3.blake3(b'x' * (2 * 1024 * 1024 + 5)).hexdigest()}"
    assert expected == hash_path(tmp_path / "f", algorithm="blake3").hash


def test_blake3_missing_names_the_pip_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes `import blake3` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "blake3", None)
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(HashError, match=r'pip install "flexlock-core\[blake3\]"'):
        hash_path(tmp_path / "f", algorithm="blake3")


def test_unknown_algorithm_lists_available_ones(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(HashError, match=r"unknown hash algorithm 'md4'.*sha256"):
        hash_path(tmp_path / "f", algorithm="md4")


def test_available_algorithms_include_sha256_and_blake3_when_installed() -> None:
    algorithms = available_algorithms()
    assert "sha256" in algorithms
    try:
        import blake3  # noqa: F401
    except ImportError:
        assert "blake3" not in algorithms
    else:
        assert "blake3" in algorithms


# --- directories and the manifest --------------------------------------------------------------


def test_directory_record_counts_files_bytes_and_newest_mtime(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a.txt": b"hello", "sub/b.txt": b"world!"})
    os.utime(data / "a.txt", ns=(1_000_000_000, 1_000_000_000))
    newest = (data / "sub/b.txt").stat().st_mtime_ns
    record = hash_path(data)
    assert (11, 2, newest) == (record.size, record.files, record.mtime_ns)


def test_manifest_lists_each_file_with_its_digest(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a.txt": b"hello", "sub/b.txt": b"world"})
    expected = f"{_sha256(b'hello')}  a.txt\n{_sha256(b'world')}  sub/b.txt\n"
    assert expected == tree_manifest(data)


def test_directory_hash_is_hash_of_its_manifest(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a": b"1", "b/c": b"2"})
    assert hash_manifest(tree_manifest(data)) == hash_path(data).hash


def test_record_and_manifest_from_one_walk_match_the_separate_calls(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a": b"1", "b/c": b"2"})
    assert (hash_path(data), tree_manifest(data)) == hash_path_with_manifest(data)


def test_manifest_is_sorted_by_path_bytes_not_per_directory(tmp_path: Path) -> None:
    # '.' (0x2e) sorts before '/' (0x2f): "a.txt" precedes "a/b" although "a" is a directory.
    data = _tree(tmp_path / "data", {"a/b": b"1", "a.txt": b"2", "B": b"3", "é": b"4"})
    assert list(parse_manifest(tree_manifest(data))) == ["B", "a.txt", "a/b", "é"]


def test_empty_directory_hashes_the_empty_manifest(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert DataRecord(f"sha256:{_sha256(b'')}", 0, 0, None) == hash_path(tmp_path / "empty")


def test_same_tree_in_another_place_has_the_same_hash(tmp_path: Path) -> None:
    files = {"x/1.bin": b"one", "x/2.bin": b"two", "top": b"t"}
    assert (
        hash_path(_tree(tmp_path / "a", files)).hash == hash_path(_tree(tmp_path / "b", files)).hash
    )


def test_renaming_a_file_changes_the_hash(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a": b"1", "b": b"2"})
    before = hash_path(data).hash
    (data / "b").rename(data / "c")
    assert before != hash_path(data).hash


def test_swapping_two_files_contents_changes_the_hash(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a": b"first", "b": b"second"})
    before = hash_path(data).hash
    _tree(data, {"a": b"second", "b": b"first"})
    assert before != hash_path(data).hash


def test_empty_subdirectories_are_not_recorded(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a": b"1"})
    before = hash_path(data).hash
    (data / "empty" / "deeper").mkdir(parents=True)
    assert before == hash_path(data).hash


@pytest.mark.skipif(not has_executable("sha256sum"), reason="GNU coreutils not on PATH")
def test_directory_hash_equals_the_documented_coreutils_recipe(tmp_path: Path) -> None:
    data = _tree(
        tmp_path / "data",
        {
            "a.txt": b"hello",
            "a/b.txt": b"nested",
            "-leading-dash": b"dash",
            "with space.csv": b"s",
            "back\\slash": b"b",
            "new\nline": b"n",
            "carriage\rreturn": b"r",
            "ünï.txt": b"u",
            ".hidden": b"h",
            ".git/config": b"excluded",
            "sub/__pycache__/m.pyc": b"excluded",
        },
    )
    (data / os.fsdecode(b"latin1-caf\xe9.bin")).write_bytes(b"not utf-8 name")
    assert "sha256:" + _recipe(data) == hash_path(data).hash


def test_documented_recipe_prunes_exactly_the_default_excludes() -> None:
    pruned = re.findall(r"-name (\S+)", _documented_recipe())
    assert list(DEFAULT_EXCLUDES) == pruned


def test_non_utf8_names_are_recorded_losslessly(tmp_path: Path) -> None:
    raw = b"caf\xe9-\xff.bin"
    data = tmp_path / "data"
    data.mkdir()
    (data / os.fsdecode(raw)).write_bytes(b"x")
    [name] = parse_manifest(tree_manifest(data))
    assert raw == os.fsencode(name)


def test_parse_manifest_round_trips_escaped_names(tmp_path: Path) -> None:
    files = {"back\\slash": b"1", "new\nline": b"2", "cr\rname": b"3", "plain": b"4"}
    data = _tree(tmp_path / "data", files)
    expected = {rel: _sha256(content) for rel, content in files.items()}
    assert expected == parse_manifest(tree_manifest(data))


def test_escaped_manifest_lines_follow_coreutils(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"new\nline": b"2"})
    assert f"\\{_sha256(b'2')}  new\\nline\n" == tree_manifest(data)


def test_parse_manifest_names_the_bad_line() -> None:
    text = f"{_sha256(b'x')}  ok\nnot a manifest line\n"
    with pytest.raises(HashError, match="manifest line 2"):
        parse_manifest(text)


def test_parse_manifest_rejects_a_duplicate_path() -> None:
    line = f"{_sha256(b'x')}  same\n"
    with pytest.raises(HashError, match="appears twice"):
        parse_manifest(line + line)


def test_manifest_differences_of_the_same_paths_are_empty(tmp_path: Path) -> None:
    files = {"back\\slash": b"1", "new\nline": b"2", "cr\rname": b"3", "plain": b"4"}
    manifest = tree_manifest(_tree(tmp_path / "data", files))
    assert ((), ()) == manifest_differences(manifest, list(parse_manifest(manifest)))


def test_manifest_differences_name_missing_and_extra_paths(tmp_path: Path) -> None:
    manifest = tree_manifest(_tree(tmp_path / "data", {"a": b"1", "new\nb": b"2", "c": b"3"}))
    assert (("new\nb",), ("d",)) == manifest_differences(manifest, ["a", "c", "d"])


def test_manifest_differences_name_the_bad_line() -> None:
    text = f"{_sha256(b'x')}  ok\nnot a manifest line\n"
    with pytest.raises(HashError, match="manifest line 2"):
        manifest_differences(text, ["ok"])


def test_manifest_differences_reject_a_duplicate_path() -> None:
    line = f"{_sha256(b'x')}  same\n"
    with pytest.raises(HashError, match="appears twice"):
        manifest_differences(line + line, ["same"])


def test_single_file_manifest_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_bytes(b"1")
    assert f"{_sha256(b'1')}  x.csv\n" == tree_manifest(tmp_path / "x.csv")


# --- excludes ----------------------------------------------------------------------------------


def test_default_excludes_skip_vcs_metadata_and_bytecode(tmp_path: Path) -> None:
    data = _tree(
        tmp_path / "data",
        {"keep": b"1", ".git/HEAD": b"ref", "pkg/__pycache__/m.pyc": b"pyc", ".flexlock/x": b"s"},
    )
    assert list(parse_manifest(tree_manifest(data))) == ["keep"]


def test_empty_excludes_hash_everything(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"keep": b"1", ".git/HEAD": b"ref"})
    assert list(parse_manifest(tree_manifest(data, excludes=()))) == [".git/HEAD", "keep"]


def test_exclude_patterns_match_names_at_any_depth(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a.tmp": b"1", "sub/b.tmp": b"2", "sub/c.csv": b"3"})
    assert list(parse_manifest(tree_manifest(data, excludes=["*.tmp"]))) == ["sub/c.csv"]


def test_exclude_pattern_with_slash_matches_the_relative_path(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"raw/tmp/x": b"1", "other/tmp/y": b"2"})
    assert list(parse_manifest(tree_manifest(data, excludes=["raw/tmp"]))) == ["other/tmp/y"]


def test_excludes_given_as_a_string_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(HashError, match="list of patterns"):
        hash_path(tmp_path / "d", excludes=".git")


# --- globs -------------------------------------------------------------------------------------


def test_glob_manifest_is_relative_to_the_glob_base(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a.csv": b"1", "b.csv": b"2", "c.txt": b"3"})
    expected = f"{_sha256(b'1')}  a.csv\n{_sha256(b'2')}  b.csv\n"
    assert expected == tree_manifest(f"{data}/*.csv")


def test_glob_record_counts_matched_files(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a.csv": b"1", "b.csv": b"22", "c.txt": b"3"})
    record = hash_path(f"{data}/*.csv")
    assert (record.size, record.files) == (3, 2)


def test_glob_matching_a_directory_includes_its_files(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"run1/out.bin": b"1", "run2/out.bin": b"2", "notes": b"n"})
    assert list(parse_manifest(tree_manifest(f"{data}/run*"))) == ["run1/out.bin", "run2/out.bin"]


def test_recursive_glob_lists_each_file_once(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a/x.csv": b"1", "a/b/y.csv": b"2"})
    assert list(parse_manifest(tree_manifest(f"{data}/**"))) == ["a/b/y.csv", "a/x.csv"]


def test_relative_glob_is_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path, {"a.csv": b"1"})
    monkeypatch.chdir(tmp_path)
    assert list(parse_manifest(tree_manifest("*.csv"))) == ["a.csv"]


def test_glob_matching_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(HashError, match=r"matches nothing"):
        hash_path(f"{tmp_path}/*.parquet")


def test_existing_path_with_brackets_is_not_a_glob(tmp_path: Path) -> None:
    (tmp_path / "run[1].csv").write_bytes(b"1")
    assert None is hash_path(tmp_path / "run[1].csv").files


# --- symlinks ----------------------------------------------------------------------------------


def test_symlinked_file_is_hashed_as_its_target(tmp_path: Path) -> None:
    real = _tree(tmp_path / "real", {"a": b"content"})
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "a").symlink_to(real / "a")
    assert hash_path(real).hash == hash_path(linked).hash


def test_symlinked_directory_is_followed(tmp_path: Path) -> None:
    _tree(tmp_path / "store", {"x/1": b"1"})
    data = _tree(tmp_path / "data", {"top": b"t"})
    (data / "x").symlink_to(tmp_path / "store" / "x")
    assert list(parse_manifest(tree_manifest(data))) == ["top", "x/1"]


def test_symlink_loop_error_names_the_looping_link(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"sub/a": b"1"})
    (data / "sub" / "back").symlink_to(data)
    with pytest.raises(HashError, match=r"symlink loop at .*sub/back: it leads back to .*data"):
        hash_path(data)


def test_self_referencing_symlink_error_names_the_link(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "me").symlink_to("me")
    with pytest.raises(HashError, match=r"symlink loop at .*data/me"):
        hash_path(data)


def test_broken_symlink_error_names_link_and_target(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "dangling").symlink_to("nowhere.bin")
    with pytest.raises(HashError, match=r"broken symlink .*data/dangling -> nowhere.bin"):
        hash_path(data)


# --- listing without reading (verify --fast) ---------------------------------------------------


def test_listing_has_the_manifest_paths_size_and_newest_mtime(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a.txt": b"1", "a/b": b"22", ".git/HEAD": b"x", "c": b""})
    record, manifest = hash_path_with_manifest(data)
    listing = list_files(data)
    assert (list(parse_manifest(manifest)), record.size, record.mtime_ns) == (
        listing.rels,
        listing.size,
        listing.newest,
    )


def test_listing_a_glob_names_files_as_its_manifest_does(tmp_path: Path) -> None:
    _tree(tmp_path / "data", {"x/1.csv": b"1", "y/2.csv": b"2", "y/3.txt": b"3"})
    pattern = str(tmp_path / "data" / "*" / "*.csv")
    assert list(parse_manifest(tree_manifest(pattern))) == list_files(pattern).rels


def test_listing_refuses_a_symlink_loop_with_the_hashing_message(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"sub/a": b"1"})
    (data / "sub" / "back").symlink_to(data)
    with pytest.raises(HashError) as hashing:
        hash_path(data)
    with pytest.raises(HashError) as listing:
        list_files(data)
    assert str(hashing.value) == str(listing.value)


# --- errors ------------------------------------------------------------------------------------


def test_missing_path_error_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(HashError, match=r"cannot hash .*missing.csv: no such file"):
        hash_path(tmp_path / "missing.csv")


def test_hash_error_is_an_input_error_exit_code_2(tmp_path: Path) -> None:
    with pytest.raises(HashError) as raised:
        hash_path(tmp_path / "missing.csv")
    assert raised.value.exit_code == 2


def test_fifo_in_a_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"a": b"1"})
    os.mkfifo(data / "pipe")
    with pytest.raises(
        HashError, match=r".*data/pipe is a FIFO \(named pipe\), not a regular file"
    ):
        hash_path(data)


def test_directory_read_as_a_file_is_an_error_naming_it(tmp_path: Path) -> None:
    # What a file replaced by a directory between listing and reading looks like to the reader.
    from flexlock.core._digest import hash_file

    (tmp_path / "was-a-file").mkdir()
    with pytest.raises(HashError, match=r"was-a-file became a directory"):
        hash_file(str(tmp_path / "was-a-file"), hashlib.sha256)


def test_unreadable_file_error_names_the_file(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"ok": b"1", "secret.bin": b"2"})
    (data / "secret.bin").chmod(0o000)
    command = [
        sys.executable,
        "-c",
        textwrap.dedent(f"""
        from flexlock.core._hashing import hash_path
        from flexlock.core._errors import HashError
        try:
            hash_path({str(data)!r}, use_cache=False)
        except HashError as error:
            print(error)
    """),
    ]
    if os.geteuid() == 0:
        # Root reads anything: run the child without the capabilities that bypass permissions.
        require_service(
            has_executable("setpriv"),
            "running as root without setpriv (util-linux) to drop CAP_DAC_OVERRIDE",
        )
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert f"cannot read {data}/secret.bin: permission denied" in result.stdout


# --- parallelism and progress ------------------------------------------------------------------


def test_thread_pool_and_single_thread_give_the_same_hash(tmp_path: Path) -> None:
    from flexlock.core._hashing import PARALLEL_MIN_FILE_BYTES

    data = _tree(
        tmp_path / "data",
        {f"big{i}.bin": os.urandom(PARALLEL_MIN_FILE_BYTES + i) for i in range(4)}
        | {f"small{i}.txt": os.urandom(100) for i in range(20)},
    )
    serial = hash_path(data, workers=1, use_cache=False)
    assert serial == hash_path(data, workers=4, use_cache=False)


def test_failure_in_the_thread_pool_raises_it_and_stops_the_other_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flexlock.core import _hashing

    data = _tree(
        tmp_path / "data",
        {f"big{i:02d}.bin": b"x" * _hashing.PARALLEL_MIN_FILE_BYTES for i in range(40)},
    )
    real_hash_file = _hashing.hash_file
    calls: list[str] = []

    def failing_first(path: str, *args: object) -> tuple[str, int]:
        # Fault injection: the first file fails as an unreadable one would.
        calls.append(path)
        if path.endswith("big00.bin"):
            raise HashError(f"cannot read {path}: injected")
        return real_hash_file(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_hashing, "hash_file", failing_first)
    with pytest.raises(HashError, match=r"big00\.bin: injected"):
        hash_path(data, workers=2, use_cache=False)
    assert len(calls) < 10  # the other thread stopped instead of hashing all 39 others


def test_progress_line_is_drawn_on_a_terminal(tmp_path: Path) -> None:
    import pty

    (tmp_path / "f").write_bytes(b"x" * 4096)
    code = textwrap.dedent(f"""
        import sys
        from flexlock.core import _hash_progress, _hashing
        _hash_progress.PROGRESS_AFTER_SECONDS = 0
        assert sys.stderr.isatty()
        _hashing.hash_path({str(tmp_path / "f")!r})
    """)
    controller, terminal = pty.openpty()
    # A terminal that can redraw a line in place (the status line stays off for TERM=dumb).
    env = {**os.environ, "TERM": "xterm"}
    try:
        subprocess.run([sys.executable, "-c", code], stderr=terminal, check=True, env=env)
        output = os.read(controller, 65536).decode()
    finally:
        os.close(controller)
        os.close(terminal)
    assert "flexlock: hashing" in output
    assert "1/1 files" in output


def test_no_progress_line_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 4096)
    code = textwrap.dedent(f"""
        from flexlock.core import _hash_progress, _hashing
        _hash_progress.PROGRESS_AFTER_SECONDS = 0
        _hashing.hash_path({str(tmp_path / "f")!r})
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr == ""
