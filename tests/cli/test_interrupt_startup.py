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

from tests._helpers import loky_workers, sleeping_script


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers through /proc")
def test_ctrl_c_while_workers_start_is_one_line_and_exit_130(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(sleeping_script(30))
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
    while not loky_workers(child.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(child.pid, signal.SIGINT)  # as the terminal does: every process of the group
    _, err = child.communicate(timeout=120)
    assert 130 == child.returncode, err
    assert "Traceback" not in err, err
    assert "KeyboardInterrupt" not in err, err
    assert 1 == err.count("flexlock: interrupted"), err
