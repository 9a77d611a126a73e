"""Log train runs to MLflow, separately from training: re-run it whenever you change it.

flexlock mlflow log log_runs.py:log_run results/train/*
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow

from flexlock.mlflow import mlflow_lock


def log_run(save_dir: str) -> None:
    model = json.loads(Path(save_dir, "model.json").read_text())
    with mlflow_lock(save_dir):
        mlflow.log_metric("train_mse", model["train_mse"])
        mlflow.log_metric("w", model["w"])
        mlflow.log_artifact(str(Path(save_dir, "model.json")))
