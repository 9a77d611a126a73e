"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def require_service(available: bool, reason: str) -> None:
    """Skip (on a developer machine) or fail (with FLEXLOCK_REQUIRE_SERVICES=1, as on CI)."""
    if available:
        return
    if os.environ.get("FLEXLOCK_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def mount_small_fs(directory: Path) -> None:
    """Mount a real 256 KiB tmpfs on `directory` (created); needs root, as on CI."""
    directory.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    require_service(
        done.returncode == 0, f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}"
    )


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` and return its stripped stdout."""
    result = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return result.stdout.strip()


def run_python(
    code: str, *, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `python -c code` in a fresh interpreter of the test environment."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=check
    )


def has_executable(name: str) -> bool:
    """Whether `name` is on PATH."""
    return shutil.which(name) is not None


def sleeping_script(seconds: int) -> str:
    """A `@clicfg` script whose tasks (save_dir results/process, key `param`) sleep."""
    return f"""
import time
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 1
    save_dir: str = "results/process"

@clicfg
def main(cfg: Config) -> None:
    time.sleep({seconds})

if __name__ == "__main__":
    main(Config())
"""


def loky_workers(parent: int) -> list[int]:
    """The pids of the loky worker processes whose parent is `parent` (read from /proc)."""
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
