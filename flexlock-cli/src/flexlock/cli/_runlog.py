"""A run's log: its stdout and stderr sent to files in its save_dir, and optionally shown too.

Capture is at the file-descriptor level (it also catches C extensions and
subprocesses) and at the Python level when `sys.stdout` was swapped (pytest,
notebooks). Showing the output too ("tee") pumps each descriptor through a pipe
read by a thread that writes to the terminal and the file. Hand-written: no
maintained library tees file descriptors (`subprocess` does it for children only).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

__all__ = ["LOG_NAMES", "captured_output"]

#: Names of the run's output files in its save_dir.
LOG_NAMES = ("stdout.log", "stderr.log")


@contextlib.contextmanager
def captured_output(directory: Path, *, tee: bool = False) -> Iterator[tuple[str, str]]:
    """Send stdout and stderr to `directory/stdout.log` and `stderr.log`; with `tee`, show them too.

    Yields the two paths.
    """
    directory.mkdir(parents=True, exist_ok=True)
    out_path, err_path = directory / LOG_NAMES[0], directory / LOG_NAMES[1]
    paths = (str(out_path), str(err_path))
    with out_path.open("wb", buffering=0) as out, err_path.open("wb", buffering=0) as err:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.flush()
        with (  # Python streams first: they ask isatty() before the descriptors change
            _python_stream("stdout", out, tee=tee),
            _python_stream("stderr", err, tee=tee),
            _descriptor(1, out, tee=tee),
            _descriptor(2, err, tee=tee),
        ):
            yield paths


@contextlib.contextmanager
def _descriptor(fd: int, log: BinaryIO, *, tee: bool) -> Iterator[None]:
    """Point descriptor `fd` at `log` (with `tee`: at a pipe pumped to both) for the block."""
    try:
        saved = os.dup(fd)
    except OSError:  # no such descriptor (a daemon without stdio): Python level only
        yield
        return
    if not tee:
        os.dup2(log.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, fd)
    os.close(write_end)
    pump = threading.Thread(
        target=_pump, args=(read_end, (saved, log.fileno())), name=f"flexlock-tee-{fd}", daemon=True
    )
    pump.start()
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            (sys.stdout if fd == 1 else sys.stderr).flush()
        os.dup2(saved, fd)  # the pipe's last writer is gone: the pump sees its end
        # A subprocess the run left behind may keep the pipe open: do not wait for it.
        pump.join(timeout=5)
        os.close(saved)


def _pump(read_end: int, targets: tuple[int, ...]) -> None:
    """Copy everything from `read_end` to each of `targets` until the pipe closes."""
    try:
        while chunk := os.read(read_end, 65536):
            for target in targets:
                with contextlib.suppress(OSError):  # a closed terminal must not stop the log
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(target, view) :]
    finally:
        os.close(read_end)


@contextlib.contextmanager
def _python_stream(name: str, log: BinaryIO, *, tee: bool) -> Iterator[None]:
    """Send Python-level writes of `sys.<name>` to `log` when they would miss the descriptor."""
    original: TextIO = getattr(sys, name)
    fd = 1 if name == "stdout" else 2
    if tee and _writes_to(original, fd):
        # Writes already go through the teed descriptor; only its answer to isatty()
        # changed (a pipe now), which progress bars and colours decide on.
        setattr(sys, name, _TerminalAnswer(original, original.isatty()))
        try:
            yield
        finally:
            setattr(sys, name, original)
        return
    wrapper = io.TextIOWrapper(open(log.fileno(), "wb", closefd=False), line_buffering=True)  # noqa: SIM115
    stream: TextIO = _Tee(original, wrapper) if tee else wrapper  # type: ignore[assignment]
    setattr(sys, name, stream)
    try:
        yield
    finally:
        setattr(sys, name, original)
        with contextlib.suppress(ValueError, OSError):
            wrapper.flush()
            wrapper.detach()


def _writes_to(stream: TextIO, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return False


class _Tee(io.TextIOBase):
    """A text stream writing to the original stream (a notebook's, pytest's) and the log."""

    def __init__(self, shown: TextIO, log: TextIO) -> None:
        super().__init__()
        self._shown, self._log = shown, log

    def write(self, text: str) -> int:
        self._log.write(text)
        return self._shown.write(text)

    def flush(self) -> None:
        self._log.flush()
        self._shown.flush()

    def isatty(self) -> bool:  # progress bars and colours keep deciding as before
        return self._shown.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._shown, "encoding", None) or "utf-8"


class _TerminalAnswer(io.TextIOBase):
    """The original stream, answering isatty() as it did before its descriptor was teed."""

    def __init__(self, stream: TextIO, tty: bool) -> None:
        super().__init__()
        self._stream, self._tty = stream, tty

    def write(self, text: str) -> int:
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._tty

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding
