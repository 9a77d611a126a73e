"""A thin, strict wrapper around the `rclone` binary for push/pull.

rclone is a program, not a library, so we call it; errors are read from its
JSON log (`--use-json-log`) rather than its exit code alone, since exit codes
changed between rclone versions. A failed rclone command is a `TransferError`
(exit code 4: the remote could not be reached, read or written). Credentials
reach rclone only through its own config or `RCLONE_CONFIG_<NAME>_…` variables
of the user's environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from flexlock.core import ConfigError, TransferError

__all__ = ["RcloneError", "rclone", "rclone_json", "require_rclone"]


class RcloneError(TransferError):
    """rclone reported an error (the message carries rclone's own words)."""


def require_rclone() -> str:
    """Return the rclone executable, or raise a ConfigError naming how to install it."""
    path = shutil.which("rclone")
    if path is None:
        # A setup problem, not a flaky remote: exit code 2, nothing to retry.
        raise ConfigError(
            "rclone is not installed: install it (Debian/Ubuntu: apt-get install rclone; "
            "elsewhere: https://rclone.org/install/) and configure a remote"
        )
    return path


# rclone's documented exit code for "directory not found".
_DIRECTORY_NOT_FOUND = 3
_CHATTER_LEVELS = {"debug", "info", "notice", "warning"}


def _errors_from_log(stderr: str) -> list[str]:
    """Return rclone's error lines (JSON log entries of level error or worse, `Failed …` lines)."""
    errors = []
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if "ERROR" in line or line.startswith("Failed") or " Failed " in line:
                errors.append(line.strip())
            continue
        if isinstance(entry, dict) and entry.get("level") in {"error", "critical", "fatal"}:
            obj = entry.get("object")
            errors.append(f"{obj}: {entry.get('msg')}" if obj else str(entry.get("msg")))
    return errors


def _failure_detail(stderr: str, returncode: int) -> str:
    """Say why rclone failed when its log has no error line: never its config notice."""
    if returncode < 0:
        return f"rclone was killed by signal {-returncode}"
    lines = []
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if line.strip() and " NOTICE: " not in line and " INFO " not in line:
                lines.append(line.strip())
            continue
        if isinstance(entry, dict) and entry.get("level") not in _CHATTER_LEVELS:
            lines.append(str(entry.get("msg")))
    return "; ".join(lines[-3:]) or f"rclone exited with code {returncode}"


def rclone(
    args: Sequence[str],
    *,
    what: str,
    progress: bool = False,
    missing_ok: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run `rclone ARGS` and raise `RcloneError` (naming `what`) if its log reports errors.

    With `progress` on a terminal, rclone's one-line stats go to our stderr. With
    `missing_ok`, "directory not found" (rclone's exit code 3) is no error: the
    result is returned with empty stdout.
    """
    command = [require_rclone(), *args, "--use-json-log", "--log-level", "NOTICE"]
    if progress and sys.stderr.isatty():
        command += ["--progress", "--stats-one-line"]
    # No prompt can ever block a batch job: rclone asks for nothing without a TTY on stdin.
    env = {**os.environ, "RCLONE_ASK_PASSWORD": "false"}
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if missing_ok and result.returncode == _DIRECTORY_NOT_FOUND:
        return subprocess.CompletedProcess(result.args, 0, "", result.stderr)
    errors = _errors_from_log(result.stderr)
    if errors or result.returncode != 0:
        detail = "; ".join(errors[:5]) or _failure_detail(result.stderr, result.returncode)
        raise RcloneError(f"{what} failed: {detail}")
    return result


def rclone_json(args: Sequence[str], *, what: str, missing_ok: bool = False) -> Any:
    """Run an rclone command that prints JSON (e.g. lsjson) and return the parsed value.

    With `missing_ok`, a directory that does not exist gives None.
    """
    return json.loads(rclone(args, what=what, missing_ok=missing_ok).stdout or "null")
