"""Against a real `mlflow server` on 127.0.0.1: logging over HTTP and the 8-writer race."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from flexlock.mlflow import active_run_for, mlflow_lock, runs_for
from flexlock.mlflow._query import newest_first
from tests.mlflow import _race
from tests.mlflow.conftest import SheetFactory

pytestmark = [pytest.mark.needs_mlflow, pytest.mark.server, pytest.mark.slow]

RACERS = 8
ROUNDS = 3


def test_sheet_and_fluent_logging_reach_the_server(
    server_uri: str, experiment_name: str, make_run: SheetFactory, tmp_path: Path
) -> None:
    save_dir = make_run(config={f"key{index}": index for index in range(150)})
    with mlflow_lock(save_dir, experiment=experiment_name) as run:
        mlflow.log_metric("acc", 0.75)
    logged = MlflowClient().get_run(run.run_id)
    downloaded = mlflow.artifacts.download_artifacts(
        run_id=run.run_id, artifact_path="run.lock", dst_path=str(tmp_path / "download")
    )
    assert (len(logged.data.params), logged.data.metrics, logged.data.tags["logical_status"]) == (
        150,
        {"acc": 0.75},
        "active",
    )
    assert Path(downloaded).read_bytes() == (save_dir / "run.lock").read_bytes()


def test_failed_block_keeps_the_previous_run_active_on_the_server(
    server_uri: str, experiment_name: str, make_run: SheetFactory
) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir, experiment=experiment_name) as good:
        pass
    with pytest.raises(OSError, match="disk"), mlflow_lock(save_dir, experiment=experiment_name):
        raise OSError("disk full")
    current = active_run_for(save_dir, experiment=experiment_name)
    assert current is not None
    assert current.info.run_id == good.run_id


def _active_and_newest(save_dir: Path, experiment: str) -> tuple[list[str], str]:
    runs = runs_for(save_dir, experiment=experiment)
    active = [run.info.run_id for run in runs if run.data.tags["logical_status"] == "active"]
    return active, newest_first(runs)[0].info.run_id


def test_eight_racing_loggers_leave_exactly_one_active_run_the_newest(
    server_uri: str, experiment_name: str, make_run: SheetFactory
) -> None:
    save_dir = make_run()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(RACERS + 1)  # the test joins it to start each round
    results = context.Queue()
    racers = [
        context.Process(
            target=_race.race,
            kwargs={
                "uri": server_uri,
                "experiment": experiment_name,
                "save_dir": str(save_dir),
                "rounds": ROUNDS,
                "barrier": barrier,
                "results": results,
            },
        )
        for _ in range(RACERS)
    ]
    for racer in racers:
        racer.start()
    outcomes: list[tuple[list[str], str]] = []
    errors: list[str] = []
    try:
        for _ in range(ROUNDS):
            barrier.wait(timeout=600)
            round_results = [results.get(timeout=600)[1] for _ in range(RACERS)]
            errors += [result for result in round_results if result.startswith("error")]
            outcomes.append(_active_and_newest(save_dir, experiment_name))
    finally:
        barrier.abort()
        for racer in racers:
            racer.join(timeout=60)
            if racer.is_alive():
                racer.kill()
    assert errors == []
    # After every round: one active run, and it is the newest by (start time, run id).
    assert [active for active, _ in outcomes] == [[newest] for _, newest in outcomes]
