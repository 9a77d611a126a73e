"""Build real run sheets on disk for the tests of `flexlock verify | diff | show | ls`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flexlock.cli._main import main
from flexlock.core import EnvRecord, PrevRecord, RunLock, Status, compute_id, dump, hash_path, load


def write_sheet(
    run_dir: Path,
    *,
    config: dict[str, Any] | None = None,
    status: Status = "succeeded",
    data: Sequence[Path] = (),
    prevs: Sequence[Path] = (),
    packages: dict[str, str] | None = None,
    created: str = "2026-11-26T12:00:00Z",
) -> Path:
    """Write a sheet for a run with these inputs (hashed now) into `run_dir`; return it."""
    config = dict(config or {})
    data_records = {str(path): hash_path(path) for path in data}
    prev_records = {}
    for prev in prevs:
        upstream = load(prev / "run.lock")
        prev_records[str(prev)] = PrevRecord(upstream.id, str(prev / "run.lock"), upstream)
    run_id = compute_id(
        config,
        {},
        {key: record.hash for key, record in data_records.items()},
        {key: prev.id for key, prev in prev_records.items()},
    )
    lock = RunLock(
        id=run_id,
        status=status,
        created=created,
        config=config,
        save_dir=str(run_dir),
        finished="2026-11-26T12:01:30Z",
        data=data_records,
        prevs=prev_records,
        env=EnvRecord(
            "3.11.7", "cpython", "Linux", "host", "me", str(Path.cwd()), packages=packages or {}
        ),
    )
    dump(lock, run_dir / "run.lock")
    return run_dir / "run.lock"


def flexlock(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """Run `flexlock ARGV` in this process; return (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def flexlock_subprocess(
    *argv: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `flexlock` command in a subprocess, output piped."""
    return subprocess.run(
        [sys.executable, "-m", "flexlock.cli._main", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
