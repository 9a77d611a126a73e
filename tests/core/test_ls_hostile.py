"""Hostile sheets under `flexlock ls`, and sheets too large to write (issue 20, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flexlock.core import LockFileError, RunLock, SummaryCache, dump, read_summary
from tests.core.test_runs import write_run


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "status: succeeded",
            "status: 5",
            "status 5 is not one of failed, queued, running, succeeded",
        ),
        ("status: succeeded", "status: done", "status 'done' is not one of"),
        (f"id: sha256:{'a' * 64}", "id: [1, 2]", "id [1, 2] is not a run id"),
        ("created: '2026-11-26T12:00:00Z'", "created: 5", "created 5 is not a timestamp"),
        ("created: '2026-11-26T12:00:00Z'", "created: {a: 1}", "created {'a': 1} is not a"),
    ],
)
def test_ls_shows_a_sheet_with_a_malformed_header_field_as_invalid(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    sheet = write_run(tmp_path)
    _edit(sheet, old, new)

    summary = read_summary(sheet)

    assert ("invalid", True) == (summary.status, problem in (summary.problem or "")), summary


def test_ls_shows_a_truncated_sheet_as_invalid(tmp_path: Path) -> None:
    sheet = write_run(tmp_path)
    text = sheet.read_bytes()
    sheet.write_bytes(text[: len(text) - 5])  # cut inside the body: the header still parses

    summary = read_summary(sheet)

    assert "invalid" == summary.status
    assert "cut short" in (summary.problem or "")


def test_ls_refuses_a_sheet_over_the_size_cap_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXLOCK_MAX_LOCK_BYTES", "100000")
    sheet = write_run(tmp_path)
    with sheet.open("a") as handle:  # over the cap after the header: the header alone parses
        handle.write("# " + "y" * 150_000 + "\n")

    summary = SummaryCache(tmp_path, cache_dir=tmp_path / "cache").summary(sheet)

    assert "invalid" == summary.status
    assert "over the run.lock size cap of 100000" in (summary.problem or "")


def test_a_sound_sheet_still_lists_with_its_fields(tmp_path: Path) -> None:
    sheet = write_run(tmp_path, config={"lr": 0.1})

    summary = read_summary(sheet)

    assert ("succeeded", "sha256:" + "a" * 64, "2026-11-26T12:00:00Z", {"lr": 0.1}) == (
        summary.status,
        summary.id,
        summary.created,
        dict(summary.config),
    )


def test_the_writer_refuses_a_sheet_the_reader_would_refuse_naming_the_largest_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXLOCK_MAX_LOCK_BYTES", "100000")
    lock = RunLock(
        id="sha256:" + "a" * 64,
        status="succeeded",
        created="2026-11-26T12:00:00Z",
        config={"small": 1, "model": {"layers": [1, 2], "huge": "x" * 200_000}},
    )

    with pytest.raises(LockFileError) as caught:
        dump(lock, tmp_path / "run.lock")

    message = str(caught.value)
    assert "over the run.lock size cap of 100000" in message
    assert "'config.model.huge' (2000" in message  # the leaf, not only the section
    assert not (tmp_path / "run.lock").exists()
    assert [] == list(tmp_path.iterdir())  # no temp file either
