"""Finding runs under a directory and reading their sheets' headers (flexlock.core._runs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from flexlock.core import (
    EnvRecord,
    ErrorRecord,
    LockFileError,
    PrevRecord,
    RunLock,
    RunSummary,
    Status,
    SummaryCache,
    dump,
    find_runs,
    is_missing,
    lookup,
    matches,
    read_summary,
    resolve_lock_path,
)


def write_run(
    directory: Path,
    *,
    status: Status = "succeeded",
    config: dict[str, Any] | None = None,
    run_id: str = "sha256:" + "a" * 64,
    **fields: Any,
) -> Path:
    """Write a run sheet into `directory` and return the run.lock path."""
    lock = RunLock(
        id=run_id,
        status=status,
        created="2026-11-26T12:00:00Z",
        config=config or {},
        save_dir=str(directory),
        **fields,
    )
    dump(lock, directory / "run.lock")
    return directory / "run.lock"


def found(root: Path, **options: Any) -> list[str]:
    return [str(path.parent.relative_to(root)) for path in find_runs(root, **options)]


def test_find_runs_lists_every_run_under_a_directory_in_name_order(tmp_path: Path) -> None:
    for name in ("b", "a", "c/deeper"):
        (tmp_path / name).mkdir(parents=True)
        write_run(tmp_path / name)
    assert found(tmp_path) == ["a", "b", "c/deeper"]


def test_find_runs_does_not_walk_the_files_of_a_run(tmp_path: Path) -> None:
    write_run(tmp_path)
    hidden = tmp_path / "outputs" / "nested"
    hidden.mkdir(parents=True)
    write_run(hidden)  # inside a run's own data: not a task run of it
    assert found(tmp_path) == ["."]


def test_find_runs_follows_task_runs_directly_inside_a_run(tmp_path: Path) -> None:
    write_run(tmp_path)
    for name in ("param=1", "param=2"):
        (tmp_path / name).mkdir()
        write_run(tmp_path / name)
    assert found(tmp_path) == [".", "param=1", "param=2"]


def test_find_runs_deep_searches_inside_runs(tmp_path: Path) -> None:
    write_run(tmp_path)
    hidden = tmp_path / "outputs" / "nested"
    hidden.mkdir(parents=True)
    write_run(hidden)
    assert found(tmp_path, deep=True) == [".", "outputs/nested"]


def test_find_runs_skips_hidden_directories_such_as_history(tmp_path: Path) -> None:
    history = tmp_path / "run" / ".flexlock" / "history" / "old"
    history.mkdir(parents=True)
    write_run(history)
    write_run(tmp_path / "run")
    assert found(tmp_path) == ["run"]


def test_find_runs_skips_the_sheet_copies_in_an_mlflow_file_store(tmp_path: Path) -> None:
    # `mlflow_lock` logs run.lock as an artifact: ./mlruns/<exp>/<run>/artifacts/run.lock
    artifacts = tmp_path / "mlruns" / "0" / "abc123" / "artifacts"
    artifacts.mkdir(parents=True)
    write_run(artifacts)
    write_run(tmp_path / "results" / "train")
    assert found(tmp_path) == ["results/train"]


def test_find_runs_ignores_symlinked_directories_by_default(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    write_run(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert found(tmp_path) == ["real"]


def test_find_runs_follows_symlinks_without_looping(tmp_path: Path) -> None:
    (tmp_path / "data" / "run").mkdir(parents=True)
    write_run(tmp_path / "data" / "run")
    (tmp_path / "data" / "loop").symlink_to(tmp_path)
    (tmp_path / "other").symlink_to(tmp_path / "data")
    assert found(tmp_path, follow_symlinks=True) == ["data/run"]


def test_find_runs_of_a_missing_directory_names_it(tmp_path: Path) -> None:
    with pytest.raises(LockFileError, match="nope: no such directory"):
        list(find_runs(tmp_path / "nope"))


def test_find_runs_is_lazy(tmp_path: Path) -> None:
    for index in range(3):
        (tmp_path / str(index)).mkdir()
        write_run(tmp_path / str(index))
    runs = find_runs(tmp_path)
    first = next(runs)
    (tmp_path / "2" / "run.lock").unlink()  # removed after the walk started: not listed
    assert [first.parent.name, *(path.parent.name for path in runs)] == ["0", "1"]


def test_read_summary_reads_the_header_fields(tmp_path: Path) -> None:
    lock = write_run(
        tmp_path,
        status="failed",
        config={"lr": 0.1, "model": {"name": "resnet"}},
        finished="2026-11-26T12:05:00Z",
        error=ErrorRecord("ValueError", "bad lr"),
    )
    assert read_summary(lock) == RunSummary(
        path=lock,
        id="sha256:" + "a" * 64,
        status="failed",
        created="2026-11-26T12:00:00Z",
        finished="2026-11-26T12:05:00Z",
        save_dir=str(tmp_path),
        config={"lr": 0.1, "model": {"name": "resnet"}},
        error="ValueError: bad lr",
    )


def test_read_summary_does_not_parse_the_body(tmp_path: Path) -> None:
    lock = write_run(
        tmp_path, config={"lr": 0.1}, env=EnvRecord("3.11", "cpython", "linux", "host", "me", "/")
    )
    # Garbage after the header is not read: listing stays cheap whatever the body holds.
    with lock.open("a") as handle:
        handle.write("prevs: [unclosed\n")
    assert read_summary(lock).config == {"lr": 0.1}


def test_read_summary_of_a_sheet_with_upstream_runs_keeps_the_config(tmp_path: Path) -> None:
    upstream = RunLock(id="sha256:" + "b" * 64, status="succeeded", created="x", config={"lr": 9})
    lock = write_run(
        tmp_path,
        config={"lr": 0.1},
        prevs={"prep": PrevRecord(upstream.id, "prep/run.lock", upstream)},
    )
    assert read_summary(lock).config == {"lr": 0.1}


def test_read_summary_of_an_invalid_sheet_reports_the_problem(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    lock.write_text("flexlock: 1\nid: [unclosed\n")
    summary = read_summary(lock)
    assert (summary.status, str(lock) in (summary.problem or "")) == ("invalid", True)


def test_read_summary_refuses_duplicate_keys(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    lock.write_text("flexlock: 1\nid: x\nstatus: succeeded\nstatus: failed\ncreated: t\n")
    assert "duplicate key 'status'" in (read_summary(lock).problem or "")


def test_read_summary_keeps_an_unquoted_timestamp_a_string(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    lock.write_text("flexlock: 1\nid: x\nstatus: succeeded\ncreated: 2026-11-26T12:00:00Z\n")
    assert read_summary(lock).created == "2026-11-26T12:00:00Z"


def test_read_summary_refuses_aliases(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    lock.write_text(
        "flexlock: 1\nid: x\nstatus: succeeded\ncreated: t\nconfig: {a: &a [1, 2], b: *a}\n"
    )
    assert "anchors and aliases" in (read_summary(lock).problem or "")


def test_read_summary_of_a_newer_schema_reports_the_upgrade(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    lock.write_text("flexlock: 99\nid: x\nstatus: succeeded\ncreated: t\n")
    assert "pip install --upgrade" in (read_summary(lock).problem or "")


def test_resolve_lock_path_accepts_a_directory_or_the_sheet(tmp_path: Path) -> None:
    lock = write_run(tmp_path)
    assert (resolve_lock_path(tmp_path), resolve_lock_path(lock)) == (lock, lock)


def test_resolve_lock_path_of_a_directory_without_a_sheet_suggests_ls(tmp_path: Path) -> None:
    with pytest.raises(LockFileError, match="flexlock ls"):
        resolve_lock_path(tmp_path)


def test_lookup_follows_dotted_keys() -> None:
    assert lookup({"model": {"lr": 0.1}}, "model.lr") == 0.1


def test_lookup_of_an_absent_key_is_missing() -> None:
    assert is_missing(lookup({"model": {"lr": 0.1}}, "model.depth"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.1", True), ("0.2", False), ("resnet*", False), ("1", False)],
)
def test_matches_compares_a_filter_as_yaml(text: str, expected: bool) -> None:
    summary = RunSummary(path=Path("run.lock"), config={"lr": 0.1})
    assert matches(summary, [("lr", text)]) is expected


def test_matches_accepts_fnmatch_patterns_for_text() -> None:
    summary = RunSummary(path=Path("run.lock"), config={"model": {"name": "resnet50"}})
    assert matches(summary, [("model.name", "resnet*")])


def test_matches_keeps_strings_that_look_like_numbers() -> None:
    summary = RunSummary(path=Path("run.lock"), config={"name": "012"})
    assert matches(summary, [("name", "012")])


def test_matches_does_not_confuse_one_with_true() -> None:
    summary = RunSummary(path=Path("run.lock"), config={"flag": True})
    assert not matches(summary, [("flag", "1")])


def test_matches_requires_every_filter() -> None:
    summary = RunSummary(path=Path("run.lock"), config={"a": 1, "b": 2})
    assert not matches(summary, [("a", "1"), ("b", "3")])


def test_matches_falls_back_to_sheet_fields() -> None:
    summary = RunSummary(path=Path("run.lock"), status="failed", config={})
    assert matches(summary, [("status", "failed")])


def age(path: Path, seconds: float = 60) -> None:
    """Make `path` look older than the racy window, as a sheet finished a while ago."""
    mtime_ns = path.stat().st_mtime_ns - int(seconds * 1e9)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_summary_cache_reuses_the_summary_of_an_unchanged_sheet(tmp_path: Path) -> None:
    lock = write_run(tmp_path / "run", config={"lr": 0.1})
    age(lock)
    first = SummaryCache(tmp_path, cache_dir=tmp_path / "cache")
    first.summary(lock)
    first.save()
    second = SummaryCache(tmp_path, cache_dir=tmp_path / "cache")
    # Garbage with the same size, mtime and inode: only a cache hit still gives the summary.
    info = lock.stat()
    lock.write_bytes(b"x" * info.st_size)
    os.utime(lock, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert second.summary(lock).config == {"lr": 0.1}


def test_summary_cache_rereads_a_replaced_sheet(tmp_path: Path) -> None:
    lock = write_run(tmp_path / "run", config={"lr": 0.1})
    age(lock)
    cache = SummaryCache(tmp_path, cache_dir=tmp_path / "cache")
    cache.summary(lock)
    cache.save()
    write_run(tmp_path / "run", config={"lr": 0.2})
    assert SummaryCache(tmp_path, cache_dir=tmp_path / "cache").summary(lock).config == {"lr": 0.2}


def test_summary_cache_does_not_keep_a_sheet_written_just_now(tmp_path: Path) -> None:
    lock = write_run(tmp_path / "run", config={"lr": 0.1})
    cache = SummaryCache(tmp_path, cache_dir=tmp_path / "cache")
    cache.summary(lock)
    cache.save()
    assert "run/run.lock" not in cache.file.read_text()


def test_a_corrupt_summary_cache_is_ignored(tmp_path: Path) -> None:
    lock = write_run(tmp_path / "run", config={"lr": 0.1})
    cache = SummaryCache(tmp_path, cache_dir=tmp_path / "cache")
    cache.file.parent.mkdir(parents=True)
    cache.file.write_text("{not json")
    assert SummaryCache(tmp_path, cache_dir=tmp_path / "cache").summary(lock).config == {"lr": 0.1}
