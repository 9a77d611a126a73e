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

SLEEPS = """
import time
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 1
    save_dir: str = "results/process"

@clicfg
def main(cfg: Config) -> None:
    time.sleep(60)

if __name__ == "__main__":
    main(Config())
"""


def _workers(parent: int) -> list[int]:
    """The pids of the loky worker processes whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{parent}\n" in status and b"popen_loky_posix" in command:
            found.append(int(entry.name))
    return found


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
    (tmp_path / "script.py").write_text(SLEEPS)
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
        workers = _workers(child.pid)
        assert 2 == len(workers), workers
        assert ["running", "running"] == _statuses(tmp_path)
        os.kill(child.pid, signum)
        child.wait(timeout=30)
        _poll(lambda: not any(_alive(pid) for pid in workers), 20)  # a generous "soon"
        assert [pid for pid in workers if _alive(pid)] == []
        # Each interrupted task finalised its sheet: none is left `running`.
        assert ["failed", "failed"] == _statuses(tmp_path)
    finally:
        for pid in [child.pid, *workers, *_workers(child.pid)]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        child.wait(timeout=30)
