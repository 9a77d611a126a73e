"""A racing logger for the supersession test, importable by `spawn` child processes."""

from __future__ import annotations

import os
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any


def race(
    *,
    uri: str,
    experiment: str,
    save_dir: str,
    rounds: int,
    barrier: Barrier,
    results: Queue[Any],
) -> None:
    """Log `save_dir` once per round, every racer released by the same barrier."""
    os.environ["MLFLOW_TRACKING_URI"] = uri
    from flexlock.mlflow import mlflow_lock

    for round_index in range(rounds):
        barrier.wait(timeout=300)
        try:
            with mlflow_lock(save_dir, experiment=experiment) as run:
                pass
            results.put((round_index, run.run_id))
        except Exception as error:  # reported to the test, which fails on it
            results.put((round_index, f"error: {type(error).__name__}: {error}"))
