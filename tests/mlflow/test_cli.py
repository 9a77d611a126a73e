"""`flexlock mlflow log|active`, called through the real `flexlock` command's main(argv)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mlflow import MlflowClient

from flexlock.cli._main import main
from flexlock.mlflow import active_run_for, mlflow_lock, runs_for
from tests.mlflow.conftest import SheetFactory, active_run_by_hand

pytestmark = [pytest.mark.needs_mlflow, pytest.mark.needs_cli]

LOGGER = """
    import mlflow
    from pathlib import Path
    from flexlock.mlflow._lock import mlflow_lock

    def log_run(save_dir):
        if Path(save_dir, "broken").exists():
            raise RuntimeError("diagnosis crashed")
        with mlflow_lock(save_dir):
            mlflow.log_metric("acc", 0.5)
"""


@pytest.fixture
def logger_script(tmp_path: Path) -> Path:
    script = tmp_path / "process.py"
    script.write_text(textwrap.dedent(LOGGER))
    return script


def test_log_runs_the_function_over_every_dir(
    mlflow_uri: str, make_run: SheetFactory, logger_script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = [make_run("a"), make_run("b")]
    code = main(["mlflow", "log", f"{logger_script}:log_run", *map(str, dirs)])
    found = [active_run_for(save_dir) for save_dir in dirs]
    assert (code, [run.data.metrics if run else None for run in found]) == (
        0,
        [{"acc": 0.5}, {"acc": 0.5}],
    )
    assert "2/2 logged, 0 failed" in capsys.readouterr().out


def test_log_continues_past_failures_and_exits_1_with_a_summary(
    mlflow_uri: str, make_run: SheetFactory, logger_script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crashing, unfinished, good = make_run("a"), make_run("b", status="running"), make_run("c")
    (crashing / "broken").touch()
    code = main(
        ["mlflow", "log", f"{logger_script}:log_run", str(crashing), str(unfinished), str(good)]
    )
    output = capsys.readouterr()
    assert (code, active_run_for(good) is not None) == (1, True)
    assert "1/3 logged, 2 failed" in output.out
    assert "RuntimeError: diagnosis crashed" in output.err
    assert "not 'succeeded'" in output.out


def test_fail_fast_stops_at_the_first_failure(
    mlflow_uri: str, make_run: SheetFactory, logger_script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crashing, never = make_run("a"), make_run("b")
    (crashing / "broken").touch()
    code = main(
        ["mlflow", "log", "--fail-fast", f"{logger_script}:log_run", str(crashing), str(never)]
    )
    assert (code, active_run_for(never)) == (1, None)
    assert "1 not tried" in capsys.readouterr().out


def test_log_without_a_function_logs_each_sheet(mlflow_uri: str, make_run: SheetFactory) -> None:
    save_dir = make_run()
    assert main(["mlflow", "log", str(save_dir)]) == 0
    run = active_run_for(save_dir)
    assert run is not None
    assert run.data.params == {"lr": "0.1", "model.depth": "3"}


def test_log_expands_a_quoted_glob(mlflow_uri: str, make_run: SheetFactory) -> None:
    dirs = [make_run("a"), make_run("b")]
    assert main(["mlflow", "log", "results/*"]) == 0
    assert all(active_run_for(save_dir) is not None for save_dir in dirs)


def test_any_status_logs_sheets_that_did_not_succeed(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run(status="failed")
    assert main(["mlflow", "log", "--any-status", str(save_dir)]) == 0


def test_log_into_a_named_experiment_through_a_function(
    mlflow_uri: str, make_run: SheetFactory, logger_script: Path
) -> None:
    save_dir = make_run()
    main(["mlflow", "log", "--experiment", "diag", f"{logger_script}:log_run", str(save_dir)])
    assert active_run_for(save_dir, experiment="diag") is not None


def test_missing_script_is_a_usage_error(
    mlflow_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["mlflow", "log", "nope.py:log_run", str(tmp_path)])
    assert (code, "no such script" in capsys.readouterr().err) == (2, True)


def test_unknown_function_is_a_usage_error_listing_the_functions(
    mlflow_uri: str, logger_script: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["mlflow", "log", f"{logger_script}:log_rnu", str(tmp_path)])
    assert (code, "found: log_run" in capsys.readouterr().err) == (2, True)


def test_active_lists_run_ids_and_save_dirs(
    mlflow_uri: str, make_run: SheetFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir) as run:
        pass
    assert main(["mlflow", "active"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{run.run_id}  {save_dir.resolve()}"]


def test_delete_superseded_flag_soft_deletes_what_a_functions_log_replaces(
    mlflow_uri: str, make_run: SheetFactory, logger_script: Path
) -> None:
    save_dir = make_run()
    assert main(["mlflow", "log", f"{logger_script}:log_run", str(save_dir)]) == 0
    first = active_run_for(save_dir)
    argv = ["mlflow", "log", "--delete-superseded", f"{logger_script}:log_run", str(save_dir)]
    assert main(argv) == 0
    assert first is not None
    assert MlflowClient().get_run(first.info.run_id).info.lifecycle_stage == "deleted"
    assert len(MlflowClient().search_runs(["0"])) == 1


def test_delete_superseded_is_off_again_after_the_command(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run()
    main(["mlflow", "log", "--delete-superseded", str(save_dir)])
    with mlflow_lock(save_dir):
        pass
    assert len(MlflowClient().search_runs(["0"])) == 2


def test_changed_only_logs_only_dirs_whose_run_lock_changed(
    mlflow_uri: str, make_run: SheetFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 23: the demo re-logged all its runs on every invocation.
    same, edited, new = make_run("a"), make_run("b"), make_run("c")
    main(["mlflow", "log", str(same), str(edited)])
    lock = edited / "run.lock"
    lock.write_text(lock.read_text().replace("lr: 0.1", "lr: 0.2"))
    capsys.readouterr()
    assert main(["mlflow", "log", "--changed-only", "results/*"]) == 0
    assert "2/3 logged, 0 failed, 1 unchanged" in capsys.readouterr().out
    assert [len(runs_for(d)) for d in (same, edited, new)] == [1, 2, 1]


def test_changed_only_relogs_runs_logged_without_the_sheet_digest(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    # A store written before the digest tag existed: its runs count as changed.
    save_dir = make_run()
    active_run_by_hand(save_dir)
    assert main(["mlflow", "log", "--changed-only", str(save_dir)]) == 0
    assert [run.data.tags["logical_status"] for run in runs_for(save_dir)] == [
        "active",
        "deprecated",
    ]


def test_migrate_gives_old_runs_the_new_state_tag(
    mlflow_uri: str, make_run: SheetFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    save_dir = make_run()
    client = MlflowClient()
    old = active_run_by_hand(save_dir, state_tag="status")
    other_tool = client.create_run("0", tags={"status": "active"})  # not flexlock's run
    assert main(["mlflow", "migrate"]) == 0
    assert "tagged 1 run(s)" in capsys.readouterr().out
    typed = client.search_runs(["0"], filter_string="tags.logical_status = 'active'")
    assert [run.info.run_id for run in typed] == [old]
    assert "logical_status" not in client.get_run(other_tool.info.run_id).data.tags
    assert main(["mlflow", "migrate"]) == 0
    assert "tagged 0 run(s)" in capsys.readouterr().out
