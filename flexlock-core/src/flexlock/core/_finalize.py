"""Finalising plain `runlock()` calls: at interpreter exit, on an uncaught exception, on SIGTERM.

A run whose final sheet cannot be written says so on stderr, and a process that
would otherwise exit 0 exits 1 (docs/run-sheet.md, "When writing fails").
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from types import TracebackType
from typing import Literal, Protocol

from flexlock.core._errors import TaskFailedError
from flexlock.core._model import ErrorRecord

__all__ = ["finish_all", "install_hooks", "unfinished"]

_Status = Literal["succeeded", "failed"]


class _Finishable(Protocol):
    def finish(self, status: _Status, error: BaseException | ErrorRecord | None = None) -> None:
        """Write the final sheet."""


# Strong references: `runlock(cfg)` without keeping the result must still be finalised.
unfinished: dict[int, _Finishable] = {}
_hooks_lock = threading.Lock()
_hooks_installed = threading.Event()


def finish_all(status: _Status, error: BaseException | ErrorRecord | None = None) -> bool:
    """Finalise every plain `runlock()` run; say loudly which sheet could not be written.

    Returns False when one could not (one broken save_dir does not block the others).
    """
    written = True
    for run in list(unfinished.values()):
        try:
            run.finish(status, error)
        except Exception as failure:
            written = False
            with contextlib.suppress(Exception):  # stderr itself may be gone
                print(f"flexlock: error: {failure}", file=sys.stderr, flush=True)
    return written


def _finish_at_exit() -> None:
    """Finalise at interpreter exit; a final sheet that was not written makes the exit code 1."""
    if not finish_all("succeeded"):
        # An atexit handler cannot change the exit status any other way (an exception
        # raised here is printed and ignored), so end now, logs and streams flushed.
        if "logging" in sys.modules:
            with contextlib.suppress(Exception):
                sys.modules["logging"].shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(TaskFailedError.exit_code)


def install_hooks() -> None:
    """Finalise the unfinished runs at exit, on an uncaught exception and on SIGTERM (once)."""
    with _hooks_lock:
        if _hooks_installed.is_set():
            return
        _hooks_installed.set()
    atexit.register(_finish_at_exit)
    previous_hook = sys.excepthook

    def excepthook(
        kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        finish_all("failed", error)
        previous_hook(kind, error, tb)

    sys.excepthook = excepthook
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: object) -> None:
    finish_all("failed", ErrorRecord(type="SIGTERM", message="terminated by SIGTERM"))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)  # die as the sender intended, exit status included
