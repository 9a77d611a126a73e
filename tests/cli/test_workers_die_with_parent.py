"""SIGTERM or kill -9 to a `--n_jobs` task list ends its loky workers, sheets finalised.

Real loky workers; the parent is killed as a scheduler or a user would kill it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests._helpers import loky_workers, sleeping_script


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody reaped yet has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _statuses(root: Path) -> list[str]:
    return sorted(str(yaml.safe_load(p.read_text())["status"]) for p in root.rglob("run.lock"))


def _poll(condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.1)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers through /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_killing_the_parent_ends_its_workers_and_their_sheets(
    tmp_path: Path, signum: signal.Signals
) -> None:
    (tmp_path / "script.py").write_text(sleeping_script(60))
    child = subprocess.Popen(
        [sys.executable, "script.py", "--sweep", "param=1,2", "--n_jobs", "2"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    workers: list[int] = []
    try:
        # Both tasks running: two workers, two sheets `running`.
        _poll(lambda: _statuses(tmp_path) == ["running", "running"], 120)
        workers = loky_workers(child.pid)
        assert 2 == len(workers), workers
        assert ["running", "running"] == _statuses(tmp_path)
        os.kill(child.pid, signum)
        child.wait(timeout=30)
        _poll(lambda: not any(_alive(pid) for pid in workers), 20)  # a generous "soon"
        assert [pid for pid in workers if _alive(pid)] == []
        # Each interrupted task finalised its sheet: none is left `running`.
        assert ["failed", "failed"] == _statuses(tmp_path)
    finally:
        for pid in [child.pid, *workers, *loky_workers(child.pid)]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        child.wait(timeout=30)
