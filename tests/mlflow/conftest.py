"""MLflow fixtures: a migrated template SQLite store copied per test, and a real server.

Building a fresh MLflow database costs ~4 s (schema + alembic migrations), so
one template is migrated per session and copied (~0.2 s) for each test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flexlock.core import DataRecord, EnvRecord, RepoRecord, RunLock, dump
from tests._helpers import require_service

_SERVER_START_DEADLINE_S = 180.0


def _clear_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_RUN_ID",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _reset_mlflow_fluent_state() -> Iterator[None]:
    """Leave no active run, experiment or tracking URI set by one test to the next."""
    yield
    if "mlflow" not in sys.modules:
        return
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils

    while mlflow.active_run() is not None:
        mlflow.end_run()
    # MLflow has no public "unset" for these process globals.
    fluent._active_experiment_id = None
    utils._tracking_uri = None


@pytest.fixture(scope="session")
def _mlflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow import MlflowClient

    directory = tmp_path_factory.mktemp("mlflow-template")
    path = directory / "template.db"
    # The default experiment's artifact location is made absolute from the cwd at creation:
    # create it inside the template dir, never in the repository.
    previous = Path.cwd()
    os.chdir(directory)
    try:
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    finally:
        os.chdir(previous)
    return path


@pytest.fixture
def mlflow_uri(tmp_path: Path, _mlflow_template_db: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Give this test a private SQLite store as MLFLOW_TRACKING_URI; cwd is tmp_path."""
    _clear_mlflow_env(monkeypatch)
    database = tmp_path / "mlflow.db"
    shutil.copy(_mlflow_template_db, database)
    uri = f"sqlite:///{database}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


SheetFactory = Callable[..., Path]


@pytest.fixture
def make_run(tmp_path: Path) -> SheetFactory:
    """Return `make(name, status=, config=, **fields)`, writing results/<name>/run.lock."""

    def make(
        name: str = "train",
        status: str = "succeeded",
        config: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Path:
        save_dir = tmp_path / "results" / name
        save_dir.mkdir(parents=True, exist_ok=True)
        sheet = RunLock(
            id=fields.pop("id", f"sha256:{uuid.uuid4().hex}"),
            status=status,  # type: ignore[arg-type]
            created="2026-11-26T12:00:00Z",
            finished="2026-11-26T12:05:00Z",
            config={"lr": 0.1, "model": {"depth": 3}} if config is None else config,
            save_dir=str(save_dir),
            **fields,
        )
        dump(sheet, save_dir / "run.lock")
        return save_dir

    return make


def full_sheet_fields(repo_root: Path) -> dict[str, Any]:
    """Code, data and env records as a real run would have them."""
    return {
        "code": {
            str(repo_root): RepoRecord(
                root=str(repo_root),
                commit="a" * 40,
                branch="main",
                remote="https://example.com/lab/project.git",
                dirty=True,
                tree="b" * 40,
                snapshot="c" * 40,
            )
        },
        "data": {"data/train.csv": DataRecord(hash="sha256:" + "d" * 64, size=10)},
        "env": EnvRecord(
            python="3.11.7",
            implementation="CPython",
            platform="Linux",
            hostname="node1",
            user="alice",
            cwd=str(repo_root),
            argv=("process.py", "--config", "x.yml"),
        ),
    }


# --- a real tracking server ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mlflow_executable() -> str | None:
    beside = Path(sys.executable).with_name("mlflow")
    return str(beside) if beside.exists() else shutil.which("mlflow")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, _mlflow_template_db: Path
) -> Iterator[str]:
    """Start `mlflow server` on 127.0.0.1 for the session; yield its URL."""
    executable = _mlflow_executable()
    require_service(
        executable is not None, "the `mlflow` server command is missing (pip install mlflow)"
    )
    assert executable is not None
    directory = tmp_path_factory.mktemp("mlflow-server")
    # A migrated copy starts in ~10 s instead of ~20 s.
    shutil.copy(_mlflow_template_db, directory / "mlflow.db")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(
        [
            executable, "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
            "--artifacts-destination", str(directory / "artifacts"),
            "--workers", "1",
        ],
        env=env, cwd=directory, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + _SERVER_START_DEADLINE_S
        while not _healthy(url):
            if process.poll() is not None:
                pytest.fail(
                    f"mlflow server exited with {process.returncode}: see {directory}/server.log"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy after {_SERVER_START_DEADLINE_S:.0f} s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        # uvicorn's worker exits with its parent; make sure of it (the group is ours alone).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def server_uri(mlflow_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Point MLFLOW_TRACKING_URI at the session's server; cwd is tmp_path."""
    _clear_mlflow_env(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.chdir(tmp_path)
    return mlflow_server


@pytest.fixture
def experiment_name() -> str:
    """A fresh experiment name, so tests sharing a server never see each other's runs."""
    return f"test-{uuid.uuid4().hex[:12]}"


def active_run_by_hand(save_dir: Path, state_tag: str = "logical_status") -> str:
    """Create a finished, active run of `save_dir` directly in the store; return its id.

    What a writer that died between promotion and reconcile leaves, or (with
    `state_tag="status"`) a run logged by flexlock-mlflow 0.11 or older.
    """
    from mlflow import MlflowClient

    from flexlock.mlflow import logical_run_key

    client = MlflowClient()
    run = client.create_run(
        "0", tags={state_tag: "active", "logical_run_key": logical_run_key(save_dir)}
    )
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)
