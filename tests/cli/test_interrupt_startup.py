"""Ctrl-C while `--n_jobs` workers start: one clean line and exit 130, no worker tracebacks.

Real loky workers, a real SIGINT sent to the whole process group as a terminal does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SLOW = """
import time
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 1
    save_dir: str = "results/process"

@clicfg
def main(cfg: Config) -> None:
    time.sleep(30)

if __name__ == "__main__":
    main(Config())
"""


def _worker_started(parent: int) -> bool:
    """Whether a loky worker process of `parent` exists (it is then still importing)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{parent}\n" in status and b"popen_loky_posix" in command:
            return True
    return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers through /proc")
def test_ctrl_c_while_workers_start_is_one_line_and_exit_130(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(SLOW)
    # A handler, not SIG_IGN, while the child starts (see test_executors: a CI shell's
    # background job would pass "ignored" down to the child).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        child = subprocess.Popen(
            [sys.executable, "script.py", "--sweep", "param=1,2,3,4", "--n_jobs", "2"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own group, so the SIGINT below reaches only it
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 60
    while not _worker_started(child.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(child.pid, signal.SIGINT)  # as the terminal does: every process of the group
    _, err = child.communicate(timeout=120)
    assert 130 == child.returncode, err
    assert "Traceback" not in err, err
    assert "KeyboardInterrupt" not in err, err
    assert 1 == err.count("flexlock: interrupted"), err
