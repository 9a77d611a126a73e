"""Writes that fail on a real full or read-only file system end in one clear line.

Each test mounts its own 256 KiB tmpfs (the tests run as root here); without the
right to mount they skip, saying so (and fail under FLEXLOCK_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from flexlock.core import LockFileError, TaskFailedError, runlock
from flexlock.core._savedir import write_fault
from tests._helpers import mount_small_fs, require_service


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB file system, unmounted afterwards."""
    mount = tmp_path / "fs"
    mount_small_fs(mount)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def read_only_fs(small_fs: Path) -> Path:
    """A real read-only file system (a tmpfs remounted `ro`)."""
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    return small_fs


def fill(directory: Path) -> None:
    """Write into `directory` until its file system is full."""
    with (directory / "big.bin").open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass


def test_context_run_whose_disk_fills_raises_one_clear_error(small_fs: Path) -> None:
    save_dir = small_fs / "run"
    with pytest.raises(TaskFailedError) as raised, runlock({"save_dir": str(save_dir)}, repos=[]):
        fill(save_dir)
    message = str(raised.value)
    assert f"{save_dir / 'run.lock'}: cannot write" in message
    assert "ENOSPC" in message
    assert "free space" in message
    assert "still says running" in message
    assert raised.value.exit_code == 1
    # the save_dir is released: once there is room again, the next run starts
    (save_dir / "big.bin").unlink()
    with runlock({"save_dir": str(save_dir)}, repos=[]) as run:
        pass
    assert run.status == "succeeded"


@pytest.mark.parametrize("catch", [True, False])
def test_plain_runlock_script_whose_disk_fills_says_so_and_exits_1(
    small_fs: Path, tmp_path: Path, catch: bool
) -> None:
    """Finalised at exit (the task ended) or by the excepthook (the task raised ENOSPC)."""
    script = tmp_path / "plain.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from flexlock.core import runlock
            runlock({{"save_dir": {str(small_fs / "run")!r}}}, repos=[])
            with (Path({str(small_fs / "run")!r}) / "big.bin").open("wb") as handle:
                try:
                    while True:
                        handle.write(b"\\0" * 65536)
                        handle.flush()
                except OSError:
                    if not {catch!r}:
                        raise
            print("task done")
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 1, done.stderr
    assert ("task done" in done.stdout) is catch
    errors = [line for line in done.stderr.splitlines() if line.startswith("flexlock: error:")]
    assert len(errors) == 1, done.stderr
    assert f"{small_fs / 'run' / 'run.lock'}: cannot write" in errors[0]
    assert "ENOSPC" in errors[0]
    # only the user's own uncaught error has a traceback, never flexlock's
    assert done.stderr.count("Traceback") == (0 if catch else 1)
    assert "flexlock/core" not in done.stderr


def test_read_only_save_dir_is_one_error_naming_it(read_only_fs: Path) -> None:
    save_dir = read_only_fs / "run"
    with pytest.raises(LockFileError) as raised:
        runlock({"save_dir": str(save_dir)}, repos=[])
    message = str(raised.value)
    assert message.startswith("the run did not start: ")
    assert f"{save_dir}: cannot write" in message
    assert "EROFS" in message
    assert "writable" in message
    assert raised.value.exit_code == 2
    assert not save_dir.exists()


def test_read_only_existing_save_dir_names_the_sheet_not_a_temporary(
    small_fs: Path,
) -> None:
    save_dir = small_fs / "run"
    save_dir.mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    with pytest.raises(LockFileError) as raised:
        runlock({"save_dir": str(save_dir)}, repos=[])
    message = str(raised.value)
    assert "EROFS" in message
    assert ".flexlock-tmp-" not in message
    assert str(save_dir) in message


def test_disk_full_at_the_start_names_the_sheet_and_releases_the_save_dir(
    small_fs: Path,
) -> None:
    save_dir = small_fs / "run"
    save_dir.mkdir()
    fill(save_dir)
    with pytest.raises(LockFileError) as raised:
        runlock({"save_dir": str(save_dir), "text": "x" * 100_000}, repos=[])
    message = str(raised.value)
    assert message.startswith(f"the run did not start: {save_dir}")  # the dir or its run.lock
    assert "cannot write" in message
    assert "ENOSPC" in message
    assert ".flexlock-tmp-" not in message
    assert not (save_dir / ".flexlock" / "lock").exists()  # the next run is not blocked


def test_save_dir_without_permission_is_one_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Root may write anywhere: the run is made by `nobody` (setpriv), in a root-owned
    # directory it can read but not write.
    require_service(shutil.which("setpriv") is not None, "setpriv (util-linux) is not installed")
    base = Path(tempfile.mkdtemp(prefix="flexlock-eacces-", dir="/tmp"))
    base.chmod(0o755)
    try:
        save_dir = base / "run"
        done = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-c",
                "import sys\n"
                "from flexlock.core import FlexLockError, runlock\n"
                "try:\n"
                f"    runlock({{'save_dir': {str(save_dir)!r}}}, repos=[])\n"
                "except FlexLockError as error:\n"
                "    sys.exit(f'error: {error}')\n",
            ],
            capture_output=True,
            text=True,
            cwd=base,
            check=False,
        )
        require_service(
            "setpriv:" not in done.stderr, f"cannot drop privileges here: {done.stderr.strip()}"
        )
        assert done.returncode == 1, done.stderr
        assert f"{save_dir}: cannot write" in done.stderr
        assert "EACCES" in done.stderr
        assert "permissions" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(
    ("code", "fix"),
    [(errno.EDQUOT, "quota"), (errno.ENOSPC, "free space"), (errno.EROFS, "writable")],
)
def test_each_write_fault_names_the_sheet_the_cause_and_the_fix(
    tmp_path: Path, code: int, fix: str
) -> None:
    # EDQUOT cannot be produced on these machines (their kernel has no tmpfs or v2 quota
    # support), so its line is checked from the error the kernel would raise.
    sheet = tmp_path / "run" / "run.lock"
    temporary = str(sheet.parent / ".flexlock-tmp-1234")
    line = write_fault(OSError(code, os.strerror(code), temporary), sheet)
    assert line.startswith(f"{sheet}: cannot write ({os.strerror(code)}, ")
    assert errno.errorcode[code] in line
    assert fix in line.split("): ", 1)[1]
