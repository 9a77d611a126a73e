"""runlock(): the sheet's content, life cycle, nesting, errors, and rerun_reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest

from flexlock.core import (
    ConfigError,
    GitError,
    HashError,
    LockFileError,
    RunInProgressError,
    clear_capture_cache,
    clear_registered,
    load,
    register_data,
    register_prev,
    rerun_reason,
    runlock,
)
from flexlock.core._inputs import RunInputs, inputs_path, kept_inputs, read_inputs
from flexlock.core._layout import manifest_path
from flexlock.core._redact import REDACTED
from tests._helpers import git


@attrs.define
class Config:
    save_dir: str
    lr: float = 0.1
    api_token: str = "hunter2"


@pytest.fixture
def project(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repo with a .gitignore'd results dir and data files; the cwd for the test."""
    (git_repo / ".gitignore").write_text("results/\ndata/\n")
    git(git_repo, "add", ".gitignore")
    git(git_repo, "commit", "-q", "-m", "ignore outputs")
    (git_repo / "data" / "images").mkdir(parents=True)
    (git_repo / "data" / "train.csv").write_text("a,b\n1,2\n")
    (git_repo / "data" / "images" / "1.png").write_bytes(b"\x89PNG1")
    (git_repo / "data" / "images" / "2.png").write_bytes(b"\x89PNG2")
    monkeypatch.chdir(git_repo)
    return git_repo


def _run_ok(save_dir: str, **kwargs: object) -> Path:
    with runlock(Config(save_dir=save_dir), repos=["."], **kwargs) as run:  # type: ignore[arg-type]
        pass
    return run.path


def test_sheet_records_config_code_data_and_env(project: Path) -> None:
    with runlock(Config(save_dir="results/a"), repos=["."], data=["data/train.csv"]) as run:
        assert "running" == load(run.path).status
    sheet = load("results/a")
    assert ("succeeded", "results/a") == (sheet.status, sheet.save_dir)
    assert {"save_dir": "results/a", "lr": 0.1, "api_token": REDACTED} == sheet.config
    assert git(project, "rev-parse", "HEAD^{tree}") == sheet.code["."].tree
    assert 2 == len(sheet.data["data/train.csv"].hash.split(":"))
    assert sheet.env is not None
    assert str(project) == sheet.env.cwd
    assert "attrs" in sheet.env.packages


def test_process_environment_is_never_recorded(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_DB_URL", "postgres://u:very-secret-value@db/x")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    path = _run_ok("results/a")
    text = path.read_text()
    assert "very-secret-value" not in text
    assert "MY_DB_URL" not in text
    assert {"SLURM_JOB_ID": "4242"} == load(path).env.scheduler  # type: ignore[union-attr]


def test_same_inputs_give_the_same_id_across_runs(project: Path) -> None:
    first = load(_run_ok("results/a", data=["data/train.csv"])).id
    second = load(_run_ok("results/a", data=["data/train.csv"])).id
    assert first == second


def test_dirty_code_is_recorded_as_a_snapshot_kept_under_a_ref(project: Path) -> None:
    (project / "README.md").write_text("edited\n")
    sheet = load(_run_ok("results/a"))
    record = sheet.code["."]
    assert record.dirty
    assert record.tree == git(project, "rev-parse", f"{record.snapshot}^{{tree}}")
    refs = git(project, "for-each-ref", "--format=%(objectname)", "refs/flexlock/")
    assert record.snapshot in refs.split()


def test_directory_input_keeps_its_manifest_for_verify(project: Path) -> None:
    path = _run_ok("results/a", data=["data/images"])
    manifest = manifest_path(path.parent, "data/images").read_text()
    assert ["1.png", "2.png"] == [line.split("  ", 1)[1] for line in manifest.splitlines()]
    assert 2 == load(path).data["data/images"].files


def test_exception_in_with_block_fails_the_run_and_is_reraised(project: Path) -> None:
    with pytest.raises(ZeroDivisionError), runlock(Config(save_dir="results/a"), repos=["."]):
        1 / 0  # noqa: B018
    sheet = load("results/a")
    assert "failed" == sheet.status
    assert sheet.error is not None
    assert ("ZeroDivisionError", "division by zero") == (sheet.error.type, sheet.error.message)
    assert "1 / 0" in sheet.error.traceback


def test_finish_is_idempotent(project: Path) -> None:
    run = runlock(Config(save_dir="results/a"), repos=["."], finalize_at_exit=False)
    run.finish("failed", ValueError("first"))
    run.finish("succeeded")
    assert "failed" == load(run.path).status


def test_rerun_keeps_the_previous_sheet_in_history(project: Path) -> None:
    first = load(_run_ok("results/a"))
    _run_ok("results/a")
    kept = list((project / "results/a/.flexlock/history").iterdir())
    assert [first] == [load(path) for path in kept]


def test_second_live_run_into_the_same_save_dir_is_refused(project: Path) -> None:
    import contextvars

    # Another context (as another thread or task has): no nesting, so a real conflict.
    other_context = contextvars.Context()
    with (
        runlock(Config(save_dir="results/a"), repos=["."]),
        pytest.raises(RunInProgressError, match=f"pid {os.getpid()}"),
    ):
        other_context.run(runlock, Config(save_dir="results/a"), repos=["."])


def test_nested_call_amends_the_active_run(project: Path) -> None:
    with runlock(Config(save_dir="results/a"), repos=["."]) as outer:
        first_id = outer.id
        inner = runlock(Config(save_dir="results/a"), repos=["."], data=["data/train.csv"])
        assert inner is outer
        sheet = load(outer.path)
        assert ("running", ["data/train.csv"]) == (sheet.status, list(sheet.data))
        assert first_id != sheet.id
    assert "succeeded" == load("results/a").status


def test_bare_nested_call_amends_the_only_active_run(project: Path) -> None:
    upstream = _run_ok("results/prep")
    with runlock(Config(save_dir="results/a"), repos=["."]) as outer:
        inner = runlock(data=["data/train.csv"], prevs=[upstream.parent])
        assert inner is outer
    sheet = load("results/a")
    assert (["data/train.csv"], 1) == (list(sheet.data), len(sheet.prevs))


def test_bare_call_without_an_active_run_names_the_fix(project: Path) -> None:
    with pytest.raises(ConfigError, match="save_dir"):
        runlock(data=["data/train.csv"])


def test_nested_with_block_does_not_finish_the_outer_run(project: Path) -> None:
    with runlock(Config(save_dir="results/a"), repos=["."]) as outer:
        with runlock(Config(save_dir="results/a"), data=["data/train.csv"]):
            pass
        assert "running" == load(outer.path).status
    assert "succeeded" == load("results/a").status


def test_inputs_registered_by_resolvers_are_recorded(project: Path) -> None:
    upstream = _run_ok("results/prep")
    register_data("data/train.csv")
    register_prev("results/prep")
    try:
        sheet = load(_run_ok("results/a"))
    finally:
        clear_registered()
    assert (["data/train.csv"], ["results/prep"]) == (list(sheet.data), list(sheet.prevs))
    assert load(upstream).id == sheet.prevs["results/prep"].id


def test_lineage_embeds_each_upstream_sheet_recursively(project: Path) -> None:
    _run_ok("results/one")
    _run_ok("results/two", prevs=["results/one"])
    sheet = load(_run_ok("results/three", prevs=["results/two/run.lock"]))
    two = sheet.prevs["results/two/run.lock"].lock
    assert load("results/one") == two.prevs["results/one"].lock
    assert "results/two/run.lock" == sheet.prevs["results/two/run.lock"].path


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"data": ["data/missing.csv"]}, HashError, "data/missing.csv"),
        ({"repos": ["../not-a-repo"]}, GitError, "not-a-repo"),
        ({"prevs": ["results/none"]}, LockFileError, "results/none.*Run that stage first"),
        ({"bogus_option": 1}, ConfigError, "bogus_option.*accepted"),
    ],
)
def test_bad_input_raises_and_writes_nothing(
    project: Path, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    (project.parent / "not-a-repo").mkdir(exist_ok=True)
    with pytest.raises(error, match=message):
        runlock(Config(save_dir="results/a"), **{"repos": ["."], **kwargs})  # type: ignore[arg-type]
    assert not (project / "results" / "a").exists()


def test_upstream_that_did_not_succeed_is_refused_by_path(project: Path) -> None:
    with pytest.raises(ValueError), runlock(Config(save_dir="results/prep"), repos=["."]):
        raise ValueError
    with pytest.raises(LockFileError, match=r"results/prep.*status 'failed'"):
        runlock(Config(save_dir="results/a"), repos=["."], prevs=["results/prep"])


def test_without_save_dir_or_runlock_path_the_error_says_how(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"save_dir.*runlock_path"):
        runlock({"lr": 1}, repos=["."])


def test_runlock_path_may_be_given_without_save_dir(project: Path) -> None:
    with runlock({"lr": 1}, repos=["."], runlock_path="results/x/run.lock") as run:
        pass
    assert "results/x" == load(run.path).save_dir


def _script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    return script


PLAIN = """
    import sys
    from flexlock.core import runlock
    runlock({"save_dir": "out", "step": 1}, repos=[])
    print("started", flush=True)
    if sys.argv[1:] == ["fail"]:
        raise KeyError("missing key")
    if sys.argv[1:] == ["wait"]:
        import time; time.sleep(60)
"""


def test_plain_call_is_succeeded_at_interpreter_exit(tmp_path: Path) -> None:
    script = _script(tmp_path, PLAIN)
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True, capture_output=True)
    assert "succeeded" == load(tmp_path / "out").status


def test_plain_call_is_failed_by_an_uncaught_exception_and_the_exit_code_kept(
    tmp_path: Path,
) -> None:
    script = _script(tmp_path, PLAIN)
    result = subprocess.run(
        [sys.executable, str(script), "fail"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    sheet = load(tmp_path / "out")
    assert (1, "failed") == (result.returncode, sheet.status)
    assert "KeyError: 'missing key'" in result.stderr
    assert ("KeyError", "'missing key'") == (sheet.error.type, sheet.error.message)  # type: ignore[union-attr]


def test_plain_call_is_failed_by_sigterm(tmp_path: Path) -> None:
    script = _script(tmp_path, PLAIN)
    process = subprocess.Popen(
        [sys.executable, str(script), "wait"], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert "started" == process.stdout.readline().strip()
    process.send_signal(signal.SIGTERM)
    assert -signal.SIGTERM == process.wait()
    process.stdout.close()
    assert ("failed", "SIGTERM") == (
        load(tmp_path / "out").status,
        load(tmp_path / "out").error.type,
    )  # type: ignore[union-attr]


def test_script_outside_any_repo_warns_once_and_records_no_code(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        from flexlock.core import runlock
        runlock({"save_dir": "out"})
    """,
    )
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert 1 == result.stderr.count("not in a git repository")
    assert {} == load(tmp_path / "out").code


def test_default_repo_is_the_calling_scripts_repo(project: Path, tmp_path: Path) -> None:
    (project / "train.py").write_text(
        "from flexlock.core import runlock\nrunlock({'save_dir': 'results/t'})\n"
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    subprocess.run([sys.executable, str(project / "train.py")], cwd=outside, check=True)
    assert [str(project)] == [r.root for r in load(outside / "results/t").code.values()]


def test_unignored_save_dir_in_the_repo_is_left_out_of_the_code(project: Path) -> None:
    (project / ".gitignore").write_text("data/\n")
    first = load(_run_ok("results/a")).id
    assert first == load(_run_ok("results/a")).id  # its own outputs do not change its code


def test_other_runs_in_unignored_dirs_are_left_out_of_the_code(project: Path) -> None:
    (project / ".gitignore").write_text("data/\n")
    _run_ok("results/task=1")
    _run_ok("results/task=2")  # a sibling task: its outputs are not task 1's code
    (project / "results" / "task=2" / "model.bin").write_bytes(b"weights")
    assert rerun_reason("results/task=1", Config(save_dir="results/task=1")) is None
    (project / "train.py").write_text("print('changed code')\n")
    clear_capture_cache()  # captures are cached per process
    assert "code changed in ." == rerun_reason("results/task=1", Config(save_dir="results/task=1"))


# -- rerun_reason ------------------------------------------------------------------


def test_up_to_date_run_needs_no_rerun(project: Path) -> None:
    _run_ok("results/a", data=["data/images"])
    assert rerun_reason("results/a", Config(save_dir="results/a")) is None


def test_rerun_reason_no_sheet(project: Path) -> None:
    assert "no run.lock in results/a" == rerun_reason("results/a")


def test_rerun_reason_failed_run(project: Path) -> None:
    with pytest.raises(RuntimeError), runlock(Config(save_dir="results/a"), repos=["."]):
        raise RuntimeError
    assert "last run failed" == rerun_reason("results/a")


def test_rerun_reason_config_changed(project: Path) -> None:
    _run_ok("results/a")
    assert "config changed: lr: 0.1 → 0.2" == rerun_reason(
        "results/a/run.lock", Config(save_dir="results/a", lr=0.2)
    )


def test_rerun_reason_redacted_secret_is_not_a_change(project: Path) -> None:
    _run_ok("results/a")
    assert rerun_reason("results/a", Config(save_dir="results/a", api_token="other")) is None


def test_rerun_reason_code_changed(project: Path) -> None:
    _run_ok("results/a")
    (project / "README.md").write_text("changed\n")
    clear_capture_cache()
    assert "code changed in ." == rerun_reason("results/a")


def test_rerun_reason_data_changed(project: Path) -> None:
    _run_ok("results/a", data=["data/images"])
    (project / "data/images/3.png").write_bytes(b"new")
    assert "data changed: data/images" == rerun_reason("results/a")


def test_rerun_reason_upstream_changed(project: Path) -> None:
    _run_ok("results/prep")
    _run_ok("results/a", prevs=["results/prep"])
    _run_ok("results/prep", data=["data/train.csv"])
    assert "upstream results/prep changed" == rerun_reason("results/a")


def test_rerun_reason_captures_a_repo_once_per_process(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flexlock.core import _git

    for index in range(5):
        _run_ok(f"results/task{index}")
    clear_capture_cache()
    captures = []
    real_capture = _git.capture_repo

    def counting_capture(*args: object, **kwargs: object) -> object:
        # A spy, not a mock: the real capture runs, the test only counts calls.
        captures.append(args)
        return real_capture(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_git, "capture_repo", counting_capture)
    assert [None] * 5 == [rerun_reason(f"results/task{index}") for index in range(5)]
    assert 1 == len(captures)


def test_nested_call_without_repos_records_the_script_repo_once(project: Path) -> None:
    (project / "train.py").write_text(
        textwrap.dedent("""
        from flexlock.core import runlock
        with runlock({"save_dir": "results/n"}) as outer:
            runlock({"save_dir": "results/n"}, data=["data/train.csv"])
        """)
    )
    subprocess.run([sys.executable, "train.py"], cwd=project, check=True)
    sheet = load(project / "results/n")
    assert (["."], ["data/train.csv"]) == (list(sheet.code), list(sheet.data))


def test_sheet_is_finalised_in_place_after_the_script_changes_directory(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run = runlock(Config(save_dir="results/a"), repos=["."], finalize_at_exit=False)
    monkeypatch.chdir(tmp_path)
    run.finish("succeeded")
    assert "succeeded" == load(project / "results/a").status
    assert not (tmp_path / "results").exists()


# -- kept identity inputs (what resuming reads instead of the sheet) -------------------


def test_finished_run_keeps_its_identity_inputs_beside_the_sheet(project: Path) -> None:
    path = _run_ok("results/a", data=["data/images"])

    assert RunInputs.of(load(path)) == kept_inputs(path)


def test_rewritten_sheet_is_read_again_not_taken_from_the_kept_inputs(project: Path) -> None:
    path = _run_ok("results/a")
    path.write_text(path.read_text().replace("lr: 0.1", "lr: 0.3"))  # same size, by hand

    assert kept_inputs(path) is None
    assert 0.3 == read_inputs(path).config["lr"]
    assert "run.lock id does not match its contents (edited by hand?)" == rerun_reason(
        "results/a", Config(save_dir="results/a", lr=0.3)
    )


@pytest.mark.parametrize("damage", ["{not json", '{"format": 99}', ""])
def test_damaged_kept_inputs_only_cost_a_full_read(project: Path, damage: str) -> None:
    path = _run_ok("results/a")
    inputs_path(path).write_text(damage)

    assert kept_inputs(path) is None
    assert rerun_reason("results/a", Config(save_dir="results/a")) is None
    assert "config changed: lr: 0.1 → 0.2" == rerun_reason(
        "results/a", Config(save_dir="results/a", lr=0.2)
    )


def test_failed_run_keeps_inputs_that_say_so(project: Path) -> None:
    with pytest.raises(RuntimeError), runlock(Config(save_dir="results/a"), repos=["."]):
        raise RuntimeError

    assert "failed" == kept_inputs(Path("results/a/run.lock")).status  # type: ignore[union-attr]


def test_tuples_kept_as_json_lists_are_no_config_change(project: Path) -> None:
    config = {"save_dir": "results/a", "sizes": (1, 2), "nested": {"pair": ("a", 1.5)}}
    with runlock(config, repos=["."]):
        pass

    assert kept_inputs(Path("results/a/run.lock")) is not None
    assert rerun_reason("results/a", config) is None


def test_config_with_integer_keys_is_not_kept_and_still_done(project: Path) -> None:
    # JSON would turn the keys into strings, which a config comparison sees as a
    # change: such a run would rerun forever. Its sheet is read instead.
    config = {"save_dir": "results/a", "by_step": {1: 0.5, 2: 0.25}}
    with runlock(config, repos=["."]):
        pass

    assert kept_inputs(Path("results/a/run.lock")) is None
    assert rerun_reason("results/a", config) is None


def test_upstream_read_through_its_kept_inputs_still_detects_a_rerun(project: Path) -> None:
    _run_ok("results/prep")
    _run_ok("results/a", prevs=["results/prep"])
    assert rerun_reason("results/a") is None

    _run_ok("results/prep", data=["data/train.csv"])

    assert "upstream results/prep changed" == rerun_reason("results/a")
