"""An unreachable tracking server fails fast, in one line, and `mlflow log` stops at it.

Real sockets on 127.0.0.1: a port bound then closed (connection refused), and a
socket that listens but never accepts or answers (the kernel completes the TCP
handshake, the request then waits for its read timeout). The wall-clock guards
are generous: MLflow's own defaults would take about 4 minutes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flexlock.core import TransferError
from flexlock.mlflow import mlflow_lock
from flexlock.mlflow._query import FAIL_FAST_ENV
from tests.mlflow.conftest import SheetFactory

pytestmark = [pytest.mark.needs_mlflow]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*FAIL_FAST_ENV, "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def refused_uri(clean_env: pytest.MonkeyPatch) -> str:
    uri = f"http://127.0.0.1:{_closed_port()}"
    clean_env.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def silent_uri(clean_env: pytest.MonkeyPatch) -> Iterator[str]:
    """A server that accepts TCP connections (in the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        uri = f"http://127.0.0.1:{server.getsockname()[1]}"
        clean_env.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


@pytest.mark.timeout(60)
def test_refused_connection_is_one_line_naming_uri_and_knob(
    refused_uri: str, make_run: SheetFactory
) -> None:
    with pytest.raises(TransferError) as caught, mlflow_lock(make_run("a")):
        pytest.fail("the block must not run without a server")
    message = str(caught.value)
    assert "\n" not in message
    assert refused_uri in message
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" in message
    assert caught.value.exit_code == 4
    # flexlock's defaults were scoped to its own calls: nothing is left in the environment.
    assert not set(FAIL_FAST_ENV) & set(os.environ)


@pytest.mark.timeout(60)
def test_unanswered_request_times_out(silent_uri: str, make_run: SheetFactory) -> None:
    with pytest.raises(TransferError, match="unreachable") as caught, mlflow_lock(make_run("a")):
        pytest.fail("the block must not run without a server")
    assert silent_uri in str(caught.value)


@pytest.mark.timeout(60)
def test_user_settings_are_kept_and_reported(
    refused_uri: str, clean_env: pytest.MonkeyPatch, make_run: SheetFactory
) -> None:
    clean_env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(TransferError) as caught, mlflow_lock(make_run("a")):
        pass
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES=0" in str(caught.value)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    # The user's credentials never reach the message.
    clean_env.setenv("MLFLOW_TRACKING_URI", refused_uri.replace("//", "//me:S3CRET@"))
    with pytest.raises(TransferError) as caught, mlflow_lock(make_run("b")):
        pass
    assert "S3CRET" not in str(caught.value)
    assert refused_uri in str(caught.value)


@pytest.mark.needs_cli
def test_log_stops_at_the_first_unreachable_error(
    refused_uri: str, make_run: SheetFactory, tmp_path: Path
) -> None:
    dirs = [str(make_run(name)) for name in ("a", "b", "c")]
    logged = subprocess.run(
        [str(Path(sys.executable).with_name("flexlock")), "mlflow", "log", *dirs],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert logged.returncode == 4, logged.stdout + logged.stderr
    assert logged.stderr.count("FAILED") == 1
    assert f"FAILED {dirs[0]}: MLflow tracking server {refused_uri}" in logged.stderr
    assert "0/3 logged, 1 failed, 2 not tried (tracking server unreachable)" in logged.stdout
    assert "Traceback" not in logged.stderr
