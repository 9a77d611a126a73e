"""Facts about the machine and the clock that several layers need, defined once.

The bottom layer of flexlock-core (beside `_errors`): it imports nothing of flexlock.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

__all__ = ["RACY_WINDOW_NS", "StatusLine", "unique_directory", "usable_cpus", "utc_now", "warn"]

# A file modified this close to the moment its stat was taken may change again within
# the filesystem's timestamp granularity without its (size, mtime) changing: such a
# stat proves nothing. 2 s covers FAT and the coarsest NFS attribute caches; git uses
# the same "racy clean" rule for its index.
RACY_WINDOW_NS = 2_000_000_000


def utc_now() -> str:
    """Return the current UTC time as the run sheet writes it (`2026-11-26T12:00:00Z`)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def usable_cpus() -> int:
    """Return the CPUs this process may run on (a Slurm job's allocation, not the node's)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1  # pragma: no cover - macOS, Windows


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class StatusLine:
    """One line of status redrawn in place on a terminal; silent on anything else.

    Hashing, task lists and Slurm waits each draw their own text through one of
    these, so a terminal never gets two kinds of in-place line or escape code.
    """

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.shown = False

    def show(self, text: str) -> None:
        """Replace the line with `text` (terminal only)."""
        if not self.enabled:
            return
        try:
            self.stream.write(f"\r{text}\x1b[K")
            self.stream.flush()
            self.shown = True
        except (OSError, ValueError):  # terminal gone or stream closed: status is optional
            self.enabled = False

    def clear(self) -> None:
        """Erase the line, leaving the cursor at its start."""
        if self.enabled and self.shown:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                self.enabled = False
            self.shown = False

    def close(self, text: str | None = None) -> None:
        """End the line: keep `text` (or the last text shown) and move to a new line."""
        if not (self.enabled and self.shown):
            return
        if text is not None:
            self.show(text)
        try:
            self.stream.write("\n")
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False
        self.shown = False


def warn(message: str, *args: object) -> None:
    """Log a one-line warning on the `flexlock` logger (stderr when logging is not set up)."""
    # logging is imported on demand: most runs never warn. Without logging
    # configured, its last-resort handler prints the one line to stderr.
    import logging

    logging.getLogger("flexlock").warning(message, *args)


def unique_directory(parent: Path, prefix: str) -> Path:
    """Create and return a new directory `parent/<prefix><random>`, with the umask's mode.

    Unlike `tempfile.mkdtemp` (always 0700), the directory is as readable as one made
    by `mkdir`, so a colleague sharing the results folder can read what lands in it.
    """
    while True:
        candidate = parent / f"{prefix}{os.urandom(6).hex()}"
        try:
            candidate.mkdir()
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        return candidate
