"""The progress line of a long hash: drawn by a daemon thread once hashing takes a while.

The text goes through `flexlock.core._system.StatusLine`, the one in-place terminal line
of flexlock, so nothing is drawn on anything but a terminal unless asked for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sized

from flexlock.core._system import StatusLine

__all__ = ["PROGRESS_AFTER_SECONDS", "HashProgress"]

#: A progress line appears once hashing has taken this long.
PROGRESS_AFTER_SECONDS = 2.0
_REDRAW_SECONDS = 0.25


def _human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class HashProgress:
    """Count what one input's hashing has done, and show it on `status` from a thread.

    While the tree is listed the line counts `found` (which the walker grows); once
    `start_hashing` is called it shows files and bytes hashed against the totals.
    """

    def __init__(self, label: str, status: StatusLine, found: Sized) -> None:
        self.label = label
        self.status = status
        self.found = found  # grows during the scan; read-only here
        self.files_total = 0
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0
        self.hashing = False
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.stop_event = threading.Event()
        if PROGRESS_AFTER_SECONDS <= 0:  # drawn at once, so a test sees it deterministically
            self._draw()
        self.thread = threading.Thread(target=self._run, name="flexlock-hash-progress", daemon=True)
        self.thread.start()

    def start_hashing(self, files: int, nbytes: int) -> None:
        """Switch from counting the listing to counting `files` files of `nbytes` to hash."""
        self.files_total = files
        self.bytes_total = nbytes
        self.hashing = True

    def add(self, files: int, nbytes: int) -> None:
        """Count `files` more files and `nbytes` more bytes as hashed (thread-safe)."""
        with self.lock:
            self.files_done += files
            self.bytes_done += nbytes

    def chunk(self, nbytes: int) -> None:
        """Count one chunk of `nbytes` read (the `on_chunk` of `hash_file`)."""
        self.add(0, nbytes)

    def _line(self) -> str:
        if not self.hashing:
            return f"flexlock: scanning {self.label}: {len(self.found):,} files"
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (
            f"flexlock: hashing {self.label}: {self.files_done:,}/{self.files_total:,} files,"
            f" {_human_bytes(self.bytes_done)}/{_human_bytes(self.bytes_total)},"
            f" {_human_bytes(self.bytes_done / elapsed)}/s"
        )

    def _draw(self) -> None:
        self.status.show(self._line())
        if not self.status.enabled:  # terminal gone or stream closed: progress is optional
            self.stop_event.set()

    def _run(self) -> None:
        if self.stop_event.wait(PROGRESS_AFTER_SECONDS):
            return
        while not self.stop_event.is_set():
            self._draw()
            self.stop_event.wait(_REDRAW_SECONDS)

    def close(self) -> None:
        """Stop the thread; a line that was shown keeps its final text on its own line."""
        self.stop_event.set()
        self.thread.join()
        if self.status.shown:
            self.status.close(self._line())
