"""save_failure_locals / load_debug_locals: a worker's failed frame, kept on disk for later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flexlock.core import (
    FlexLockError,
    TaskFailedError,
    debug_enabled,
    debug_exception,
    load_debug_locals,
    save_failure_locals,
)
from flexlock.core._debug_store import DEBUG_DIR


class Point:
    """A class importable by the loader (module-level, like a user's own types)."""

    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and other.x == self.x

    __hash__ = None  # type: ignore[assignment]


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


def _task(scale: int) -> None:
    point = Point(3)
    names = ["a", "b"]
    generator = (n for n in names)  # not picklable by pickle nor cloudpickle
    _ = (point, generator)
    raise ValueError(f"bad scale {scale}")


def _failure(function: Any = None) -> BaseException:
    try:
        if function is None:
            _task(2)
        else:
            function()
    except Exception as error:
        return error
    raise AssertionError("the task did not fail")


def _index(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / DEBUG_DIR / "index.json").read_text())  # type: ignore[no-any-return]


def test_save_returns_the_debug_directory_under_the_run(tmp_path: Path) -> None:
    assert tmp_path / ".flexlock" / "debug" == save_failure_locals(_failure(), tmp_path)


def test_index_records_the_failing_user_frame(tmp_path: Path) -> None:
    save_failure_locals(_failure(), tmp_path)
    frame = _index(tmp_path)["frame"]
    assert ("_task", __file__) == (frame["function"], frame["file"])


def test_index_records_the_exception_and_traceback(tmp_path: Path) -> None:
    save_failure_locals(_failure(), tmp_path)
    exception = _index(tmp_path)["exception"]
    assert ("ValueError", "bad scale 2", True) == (
        exception["type"],
        exception["message"],
        exception["traceback"].rstrip().endswith("ValueError: bad scale 2"),
    )


def test_saved_variables_load_back_equal(tmp_path: Path) -> None:
    save_failure_locals(_failure(), tmp_path)
    namespace: dict[str, Any] = {}
    load_debug_locals(tmp_path, namespace)
    assert {"scale": 2, "point": Point(3), "names": ["a", "b"]} == {
        key: namespace[key] for key in ("scale", "point", "names")
    }


def test_unpicklable_variable_keeps_its_type_and_repr(tmp_path: Path) -> None:
    save_failure_locals(_failure(), tmp_path)
    entry = _index(tmp_path)["variables"]["generator"]
    assert ("generator", True, None) == (
        entry["type"],
        entry["repr"].startswith("<generator object"),
        entry.get("file"),
    )


def test_load_leaves_out_repr_only_variables_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_failure_locals(_failure(), tmp_path)
    loaded = load_debug_locals(tmp_path, {})
    assert (False, True) == (
        "generator" in loaded,
        "not loaded: generator (TypeError" in capsys.readouterr().err,
    )


def test_variable_over_the_size_limit_is_saved_as_repr_only(tmp_path: Path) -> None:
    def task() -> None:
        blob = b"x" * 10_000
        _ = blob
        raise RuntimeError

    save_failure_locals(_failure(task), tmp_path, max_bytes=1000)
    entry = _index(tmp_path)["variables"]["blob"]
    assert ("larger than 1000 bytes", []) == (
        entry["unpickled"],
        [p.name for p in (tmp_path / DEBUG_DIR).glob("*.pkl")],
    )


def test_variables_past_the_total_limit_are_saved_as_repr_only(tmp_path: Path) -> None:
    def task() -> None:
        first = b"x" * 600
        second = b"y" * 600
        _ = (first, second)
        raise RuntimeError

    save_failure_locals(_failure(task), tmp_path, max_total_bytes=1000)
    variables = _index(tmp_path)["variables"]
    assert ("0000.pkl", "over the 1000 bytes of all variables") == (
        variables["first"].get("file"),
        variables["second"].get("unpickled"),
    )


def test_broken_repr_does_not_stop_the_save(tmp_path: Path) -> None:
    def task() -> None:
        broken = BrokenRepr()
        _ = broken
        raise RuntimeError

    save_failure_locals(_failure(task), tmp_path)
    assert (
        "<repr failed: RuntimeError('repr exploded')>"
        == (_index(tmp_path)["variables"]["broken"]["repr"])
    )


def test_lambda_round_trips_with_cloudpickle(tmp_path: Path) -> None:
    pytest.importorskip("cloudpickle", reason="cloudpickle is optional")

    def task() -> None:
        offset = 10
        shift = lambda value: value + offset  # noqa: E731 - what a notebook user writes
        _ = shift
        raise RuntimeError

    save_failure_locals(_failure(task), tmp_path)
    assert 11 == load_debug_locals(tmp_path, {})["shift"](1)


def test_without_cloudpickle_plain_pickle_is_used(tmp_path: Path) -> None:
    # A fresh interpreter where `import cloudpickle` fails, as on a bare install.
    code = f"""
import sys
sys.modules["cloudpickle"] = None
from flexlock.core import save_failure_locals
def task():
    count = 7
    raise RuntimeError
try:
    task()
except RuntimeError as error:
    save_failure_locals(error, {str(tmp_path)!r})
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    entry = _index(tmp_path)["variables"]["count"]
    assert ("pickle", 7) == (entry["pickler"], load_debug_locals(tmp_path, {})["count"])


def test_save_into_an_unwritable_place_returns_none_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    assert (None, True) == (
        save_failure_locals(_failure(), not_a_directory),
        "could not save the failed frame's variables" in capsys.readouterr().err,
    )


def test_a_new_save_replaces_the_previous_one(tmp_path: Path) -> None:
    def other() -> None:
        fresh = 1
        _ = fresh
        raise RuntimeError

    save_failure_locals(_failure(), tmp_path)
    save_failure_locals(_failure(other), tmp_path)
    assert ["_", "fresh"] == sorted(_index(tmp_path)["variables"])


def test_no_temporary_directories_are_left_behind(tmp_path: Path) -> None:
    save_failure_locals(_failure(), tmp_path)
    save_failure_locals(_failure(), tmp_path)
    assert ["debug"] == sorted(p.name for p in (tmp_path / ".flexlock").iterdir())


def test_user_frame_is_found_through_a_flexlock_wrapper_error(tmp_path: Path) -> None:
    # What a runner does: wrap the user's exception in a FlexLockError.
    try:
        try:
            _task(5)
        except ValueError as error:
            raise TaskFailedError("the task failed") from error
    except TaskFailedError as wrapped:
        save_failure_locals(wrapped, tmp_path)
    assert "_task" == _index(tmp_path)["frame"]["function"]


def test_load_accepts_the_run_lock_path(tmp_path: Path) -> None:
    save_failure_locals(_failure(), tmp_path)
    (tmp_path / "run.lock").write_text("flexlock: 1\n")
    assert 2 == load_debug_locals(tmp_path / "run.lock", {})["scale"]


def test_load_from_a_run_without_saved_locals_names_the_task_runs_that_have_them(
    tmp_path: Path,
) -> None:
    save_failure_locals(_failure(), tmp_path / "param=3")
    with pytest.raises(FlexLockError, match=r"saved locals exist in: .*param=3"):
        load_debug_locals(tmp_path, {})


def test_load_from_a_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(FlexLockError, match="no such run directory") as info:
        load_debug_locals(tmp_path / "missing", {})
    assert 2 == info.value.exit_code


def test_load_refuses_a_newer_index_format(tmp_path: Path) -> None:
    save_failure_locals(_failure(), tmp_path)
    index_path = tmp_path / DEBUG_DIR / "index.json"
    index_path.write_text(json.dumps({**_index(tmp_path), "flexlock_debug": 99}))
    with pytest.raises(FlexLockError, match="unknown saved-locals format 99"):
        load_debug_locals(tmp_path, {})


def test_load_defaults_to_the_running_ipython_namespace(tmp_path: Path) -> None:
    pytest.importorskip("IPython", reason="IPython is optional")
    save_failure_locals(_failure(), tmp_path)
    code = f"""
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_cell("from flexlock.core import load_debug_locals")
shell.run_cell("load_debug_locals({str(tmp_path)!r})")
print(shell.user_ns["names"])
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert "['a', 'b']" == done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("pdb", True), ("0", False), ("off", False), ("", False)]
)
def test_debug_enabled_reads_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("FLEXLOCK_DEBUG", value)
    assert expected == debug_enabled()


def test_debug_exception_is_a_no_op_when_off(capsys: pytest.CaptureFixture[str]) -> None:
    debug_exception(_failure())
    assert ("", "") == tuple(capsys.readouterr())


def test_debug_exception_injects_into_main_when_asked(tmp_path: Path) -> None:
    code = """
from flexlock.core import debug_exception
def task():
    local_value = 41
    raise RuntimeError
try:
    task()
except RuntimeError as error:
    debug_exception(error)
print(local_value + 1)
"""
    env = {**os.environ, "FLEXLOCK_DEBUG": "inject"}
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    )
    assert "42" == done.stdout.strip()


def test_load_refuses_a_save_this_user_did_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The save came from elsewhere (pulled, copied): another machine's key signed it.
    from flexlock.core import ConfigError

    monkeypatch.setenv("FLEXLOCK_CACHE_DIR", str(tmp_path / "other-machine"))
    save_failure_locals(_failure(), tmp_path / "run")
    monkeypatch.setenv("FLEXLOCK_CACHE_DIR", str(tmp_path / "this-machine"))
    with pytest.raises(ConfigError, match=r"arbitrary code.*--trust-pickles") as caught:
        load_debug_locals(tmp_path / "run", {})
    assert 2 == caught.value.exit_code
    assert 2 == load_debug_locals(tmp_path / "run", {}, trust_pickles=True)["scale"]


def test_load_refuses_an_edited_pickle(tmp_path: Path) -> None:
    from flexlock.core import ConfigError

    save_failure_locals(_failure(), tmp_path)
    pickle_file = next((tmp_path / DEBUG_DIR).glob("*.pkl"))
    pickle_file.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(ConfigError, match="not written by flexlock"):
        load_debug_locals(tmp_path, {})


def test_load_refuses_a_save_without_a_seal(tmp_path: Path) -> None:
    from flexlock.core import ConfigError

    save_failure_locals(_failure(), tmp_path)
    (tmp_path / DEBUG_DIR / "seal").unlink()
    with pytest.raises(ConfigError, match="not written by flexlock"):
        load_debug_locals(tmp_path, {})
