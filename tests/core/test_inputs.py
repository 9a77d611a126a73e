"""The identity inputs a run keeps beside its sheet: a faithful, self-invalidating copy."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from flexlock.core import RunLock, dump, load
from flexlock.core._inputs import RunInputs, inputs_path, kept_inputs, write_inputs
from flexlock.core._layout import STATE_DIR
from tests.core.test_lockfile import run_locks


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_locks)
def test_kept_inputs_equal_those_read_from_the_sheet(lock: RunLock) -> None:
    with tempfile.TemporaryDirectory() as temp:
        path = Path(temp) / "run.lock"
        dump(lock, path)
        write_inputs(path, lock)

        assert RunInputs.of(load(path)) == kept_inputs(path)


def test_kept_inputs_live_in_the_save_dirs_state_directory(tmp_path: Path) -> None:
    assert tmp_path / STATE_DIR / "inputs.json" == inputs_path(tmp_path / "run.lock")


def test_inputs_of_another_sheet_in_the_same_place_are_not_used(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    first = RunLock(id="sha256:1", status="succeeded", created="now", config={"lr": 0.1})
    dump(first, path)
    write_inputs(path, first)

    dump(RunLock(id="sha256:2", status="succeeded", created="now", config={"lr": 0.2}), path)

    assert kept_inputs(path) is None


def test_unwritable_state_directory_leaves_no_inputs_and_raises_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    lock = RunLock(id="sha256:1", status="succeeded", created="now")
    dump(lock, path)
    (tmp_path / STATE_DIR).write_text("a file where the directory should be")

    write_inputs(path, lock)

    assert kept_inputs(path) is None
