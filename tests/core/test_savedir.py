"""The save_dir lock, history of earlier sheets and temp sweeping."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flexlock.core import RunInProgressError, RunLock, SaveDirLock, dump
from flexlock.core._savedir import (
    _start_time,
    break_lock,
    history_dir,
    preserve_previous,
    sweep_save_dir,
)

_HOLDER = """
import sys, time
from flexlock.core._savedir import SaveDirLock
lock = SaveDirLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def _hold_in_subprocess(save_dir: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(save_dir)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert "held" == process.stdout.readline().strip()
    return process


def _write_owner(save_dir: Path, **owner: object) -> Path:
    path = save_dir / ".flexlock" / "lock"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"nonce": "n0", "created": "then", **owner}))
    return path


def test_acquire_writes_owner_data_and_release_removes_it(tmp_path: Path) -> None:
    lock = SaveDirLock(tmp_path)
    lock.acquire()
    owner = json.loads((tmp_path / ".flexlock" / "lock").read_text())
    assert (socket.gethostname(), os.getpid()) == (owner["host"], owner["pid"])
    lock.release()
    assert not (tmp_path / ".flexlock" / "lock").exists()


def test_second_holder_fails_fast_naming_host_and_pid(tmp_path: Path) -> None:
    process = _hold_in_subprocess(tmp_path)
    try:
        with pytest.raises(
            RunInProgressError, match=f"host {socket.gethostname()}, pid {process.pid}.*remove"
        ):
            SaveDirLock(tmp_path).acquire()
    finally:
        process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_run_in_progress_exits_with_code_2() -> None:
    assert 2 == RunInProgressError.exit_code


def test_holder_killed_with_sigkill_is_taken_over(tmp_path: Path) -> None:
    process = _hold_in_subprocess(tmp_path)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.stdout is not None
    process.stdout.close()
    lock = SaveDirLock(tmp_path)
    lock.acquire()
    assert os.getpid() == json.loads(lock.path.read_text())["pid"]
    lock.release()


def test_live_pid_with_another_start_time_is_a_reused_pid_and_stale(tmp_path: Path) -> None:
    _write_owner(tmp_path, host=socket.gethostname(), pid=os.getpid(), start_time="1")
    with SaveDirLock(tmp_path) as lock:
        assert lock.held


def test_holder_on_another_host_is_respected_before_the_ttl(tmp_path: Path) -> None:
    _write_owner(tmp_path, host="node-7", pid=12345)
    with pytest.raises(RunInProgressError, match=r"host node-7, pid 12345.*stale 600 s after"):
        SaveDirLock(tmp_path, ttl_s=600).acquire()


def test_holder_on_another_host_is_taken_over_after_the_ttl(tmp_path: Path) -> None:
    path = _write_owner(tmp_path, host="node-7", pid=12345)
    old = time.time() - 700
    os.utime(path, (old, old))
    with SaveDirLock(tmp_path, ttl_s=600) as lock:
        assert lock.held


def test_acquire_waits_for_a_holder_that_finishes(tmp_path: Path) -> None:
    process = _hold_in_subprocess(tmp_path)
    subprocess.Popen(["sh", "-c", f"sleep 0.3; kill {process.pid}"])
    with SaveDirLock(tmp_path, wait_s=30) as lock:
        assert lock.held
    process.wait()
    assert process.stdout is not None
    process.stdout.close()


_RACER = """
import sys
from flexlock.core._errors import RunInProgressError
from flexlock.core._savedir import SaveDirLock
lock = SaveDirLock(sys.argv[1])
try:
    lock.acquire()
except RunInProgressError:
    print("busy")
else:
    print("won", flush=True)
    sys.stdin.read()
"""


def test_of_eight_racing_processes_exactly_one_wins(tmp_path: Path) -> None:
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outcomes = []
    for racer in racers:
        assert racer.stdout is not None
        outcomes.append(racer.stdout.readline().strip())
    for racer in racers:
        racer.communicate("")
    assert ["busy"] * 7 + ["won"] == sorted(outcomes)


def test_break_lock_removes_any_holder_and_returns_it(tmp_path: Path) -> None:
    _write_owner(tmp_path, host="node-7", pid=1)
    assert "node-7" == (break_lock(tmp_path) or {}).get("host")
    assert not (tmp_path / ".flexlock" / "lock").exists()


def test_start_time_of_this_process_is_known_on_linux() -> None:
    assert _start_time(os.getpid()) is not None


def test_previous_finished_sheet_is_kept_in_history(tmp_path: Path) -> None:
    sheet = RunLock(
        id="sha256:abcdef0123456789", status="succeeded", created="2026-11-26T12:00:00Z"
    )
    dump(sheet, tmp_path / "run.lock")
    kept = preserve_previous(tmp_path, tmp_path / "run.lock")
    assert kept == history_dir(tmp_path) / "20261126T120000Z-succeeded-abcdef012345.lock"
    assert (tmp_path / "run.lock").read_bytes() == kept.read_bytes()


def test_sheet_left_running_by_a_dead_run_is_kept_as_interrupted(tmp_path: Path) -> None:
    dump(
        RunLock(id="sha256:ab", status="running", created="2026-11-26T12:00:00Z"),
        tmp_path / "run.lock",
    )
    kept = preserve_previous(tmp_path, tmp_path / "run.lock")
    assert kept is not None
    assert "20261126T120000Z-interrupted-ab.lock" == kept.name


def test_unreadable_sheet_is_kept_too(tmp_path: Path) -> None:
    (tmp_path / "run.lock").write_text("{{{")
    kept = preserve_previous(tmp_path, tmp_path / "run.lock")
    assert kept is not None
    assert kept.name.endswith("-unreadable.lock")


def test_two_sheets_with_the_same_name_both_survive(tmp_path: Path) -> None:
    dump(
        RunLock(id="sha256:ab", status="failed", created="2026-11-26T12:00:00Z"),
        tmp_path / "run.lock",
    )
    first = preserve_previous(tmp_path, tmp_path / "run.lock")
    second = preserve_previous(tmp_path, tmp_path / "run.lock")
    assert first != second
    assert 2 == len(list(history_dir(tmp_path).iterdir()))


def test_sweep_removes_run_lock_temp_files_of_any_age(tmp_path: Path) -> None:
    (tmp_path / ".flexlock-tmp-run.lock.x1").write_text("partial")
    (tmp_path / "results.csv").write_text("user data")
    sweep_save_dir(tmp_path)
    assert ["results.csv"] == sorted(p.name for p in tmp_path.iterdir())


_TAKING_OVER = """
import sys, time
from flexlock.core._savedir import SaveDirLock

class Stuck(SaveDirLock):
    def _read_holder(self):
        if self.path.with_name("lock.takeover").exists():  # inside the takeover, guard held
            print("guarded", flush=True)
            time.sleep(60)
        return super()._read_holder()

Stuck(sys.argv[1]).acquire()
"""

_ACQUIRE_NO_WAIT = """
import sys
from flexlock.core import RunInProgressError
from flexlock.core._savedir import SaveDirLock
try:
    SaveDirLock(sys.argv[1], wait_s=0).acquire()
except RunInProgressError as error:
    print(error)
    sys.exit(2)
print("acquired")
"""


def _stale_lock_mid_takeover(save_dir: Path) -> subprocess.Popen[str]:
    """A dead holder's lock, and a process stopped inside its takeover (guard held)."""
    holder = _hold_in_subprocess(save_dir)
    holder.kill()
    holder.wait()
    assert holder.stdout is not None
    holder.stdout.close()
    taker = subprocess.Popen(
        [sys.executable, "-c", _TAKING_OVER, str(save_dir)], stdout=subprocess.PIPE, text=True
    )
    assert taker.stdout is not None
    assert "guarded" == taker.stdout.readline().strip()
    return taker


def _acquire_no_wait(save_dir: Path) -> subprocess.CompletedProcess[str]:
    # The timeout only catches a hang: the old code spun 30 s on the guard.
    return subprocess.run(
        [sys.executable, "-c", _ACQUIRE_NO_WAIT, str(save_dir)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def test_guard_of_a_takeover_killed_with_sigkill_is_removed_at_once(tmp_path: Path) -> None:
    taker = _stale_lock_mid_takeover(tmp_path)
    taker.kill()
    taker.wait()
    assert taker.stdout is not None
    taker.stdout.close()
    assert (tmp_path / ".flexlock" / "lock.takeover").is_dir()
    done = _acquire_no_wait(tmp_path)
    assert (0, "acquired\n") == (done.returncode, done.stdout), done.stderr
    assert [] == [p.name for p in (tmp_path / ".flexlock").iterdir() if "takeover" in p.name]


def test_live_takeover_with_lock_wait_0_fails_with_a_message_naming_the_guard(
    tmp_path: Path,
) -> None:
    taker = _stale_lock_mid_takeover(tmp_path)
    try:
        done = _acquire_no_wait(tmp_path)
    finally:
        taker.kill()
        taker.wait()
        assert taker.stdout is not None
        taker.stdout.close()
    assert 2 == done.returncode, done.stderr
    assert "another process is taking over its stale lock" in done.stdout
    assert str(tmp_path / ".flexlock" / "lock.takeover") in done.stdout
