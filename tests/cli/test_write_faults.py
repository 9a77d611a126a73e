"""A `@clicfg` run on a full or read-only file system: one line, the documented exit code.

Real tmpfs mounts (the tests run as root here); without the right to mount they skip.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._helpers import mount_small_fs

pytestmark = pytest.mark.needs_cli

SCRIPT = textwrap.dedent(
    """
    import attrs
    from flexlock.cli import clicfg

    @attrs.define
    class Config:
        save_dir: str = "results"
        fill: bool = False
        catch: bool = True

    @clicfg
    def main(cfg: Config) -> None:
        if cfg.fill:
            with open(f"{cfg.save_dir}/big.bin", "wb") as handle:
                try:
                    while True:
                        handle.write(b"\\0" * 65536)
                        handle.flush()
                except OSError:
                    if not cfg.catch:
                        raise
        print("task done")

    if __name__ == "__main__":
        main()
    """
)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB file system, unmounted afterwards."""
    mount = tmp_path / "fs"
    mount_small_fs(mount)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def run_script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )


def errors_of(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("job.py: error:")]


@pytest.mark.parametrize("catch", ["true", "false"])
def test_disk_filling_during_the_run_is_one_line_exit_1(
    small_fs: Path, tmp_path: Path, catch: str
) -> None:
    save_dir = small_fs / "run"
    done = run_script(tmp_path, "-o", f"save_dir={save_dir}", "fill=true", f"catch={catch}")
    assert done.returncode == 1, done.stderr
    [error] = errors_of(done)
    assert f"{save_dir / 'run.lock'}: cannot write" in error
    assert "ENOSPC" in error
    assert "free space" in error
    assert "run sheet:" not in done.stderr
    if catch == "true":  # the user's code did not fail: no traceback at all
        assert "Traceback" not in done.stderr
    else:  # the user's own error is shown, flexlock's is one line
        assert done.stderr.count("Traceback") == 1
        assert "flexlock/core" not in done.stderr


def test_read_only_save_dir_is_one_line_exit_2_and_names_no_missing_file(
    small_fs: Path, tmp_path: Path
) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    save_dir = small_fs / "run"
    done = run_script(tmp_path, "-o", f"save_dir={save_dir}")
    assert done.returncode == 2, done.stderr
    [error] = errors_of(done)
    assert f"{save_dir}: cannot write" in error
    assert "EROFS" in error
    assert "Traceback" not in done.stderr
    assert "run sheet:" not in done.stderr
    assert "task done" not in done.stdout


def test_task_list_on_a_read_only_save_dir_points_at_no_missing_log(
    small_fs: Path, tmp_path: Path
) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    done = run_script(
        tmp_path, "-o", f"save_dir={small_fs}/run/${{fill}}", "--sweep", "fill=true,false"
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    failures = [line for line in done.stderr.splitlines() if line.startswith("task fill=")]
    assert len(failures) == 2, done.stderr
    for line in failures:
        assert "cannot write" in line
        assert "EROFS" in line
    named = [
        line.split("log:", 1)[1].strip() for line in done.stderr.splitlines() if "log:" in line
    ]
    assert all(Path(path).is_file() for path in named), named
