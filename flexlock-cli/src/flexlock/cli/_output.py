"""Terminal output of the commands: errors as `prog: error: ...`; colour and alignment on a TTY.

Colour follows the common conventions: `NO_COLOR` (any value) turns it off,
`FORCE_COLOR` / `CLICOLOR_FORCE` turn it on even when piped, otherwise only a
terminal gets it. Hand-written rather than a dependency (rich, click): a dozen
ANSI codes and a column aligner do not justify a package on every HPC node.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from flexlock.core import FlexLockError

__all__ = ["STATUS_STYLES", "Printer", "dumps_json", "report_errors", "text_width"]

_CODES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}

#: Style of each run / check status.
STATUS_STYLES = {
    "succeeded": "green",
    "ok": "green",
    "failed": "red",
    "changed": "red",
    "missing": "red",
    "extra": "red",
    "unreadable": "red",
    "invalid": "red",
    "running": "yellow",
    "queued": "cyan",
    "unchecked": "yellow",
    "added": "green",
    "removed": "red",
}


def report_errors(prog: str, command: Callable[[], int]) -> int:
    """Run `command` and return its exit code, reporting a FlexLock error or Ctrl-C on stderr.

    A FlexLock error is one line `prog: error: MESSAGE` (its traceback first with
    FLEXLOCK_TRACEBACK) and its own exit code; Ctrl-C is `prog: interrupted`, 130.
    A reader that stops early (`| head`) ends the output quietly, exit 0.
    """
    try:
        code = command()
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except FlexLockError as error:
        from flexlock.core import traceback_enabled

        if traceback_enabled():  # FLEXLOCK_TRACEBACK: the exit code stays the error's
            import traceback

            traceback.print_exception(error)
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again.

    The recipe of the Python docs (signal module, "Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a descriptor (pytest)
        pass


def _wants_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR") or os.environ.get("CLICOLOR_FORCE"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def text_width(text: str) -> int:
    """Return how many terminal cells `text` takes (wide East Asian characters count 2)."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


class Printer:
    """Write styled lines and aligned tables to one stream."""

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.color = _wants_color(self.stream) if color is None else color
        self.is_tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def style(self, text: str, *styles: str) -> str:
        """Return `text` wrapped in the ANSI codes of `styles` when colour is on."""
        codes = [_CODES[name] for name in styles if name in _CODES]
        if not self.color or not codes or not text:
            return text
        return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"

    def status(self, status: str, text: str | None = None) -> str:
        """Return `text` (default: `status`) coloured for `status`."""
        return self.style(status if text is None else text, STATUS_STYLES.get(status, ""))

    def line(self, text: str = "") -> None:
        """Write one line."""
        self.stream.write(text + "\n")

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        styles: Sequence[Sequence[str]] | None = None,
    ) -> None:
        """Write `rows` as columns aligned under `headers`.

        On a terminal the widest column is shortened with "…" to fit the screen;
        piped output is never cut, so `grep`/`awk` see every value. Columns are
        separated by two spaces (tabs would break alignment of wide values).
        """
        widths = [text_width(header) for header in headers]
        for row in rows:
            for index, cell in enumerate(row):
                widths[index] = max(widths[index], text_width(cell))
        if self.is_tty:
            import shutil  # with its compression modules, only for aligned tables

            widths = _fit(widths, shutil.get_terminal_size((120, 24)).columns)
        self.line(
            self.style(
                "  ".join(
                    _pad(header, width) for header, width in zip(headers, widths, strict=True)
                ).rstrip(),
                "bold",
            )
        )
        for row_index, row in enumerate(rows):
            cells = []
            for index, (cell, width) in enumerate(zip(row, widths, strict=True)):
                shown = (
                    _pad(_cut(cell, width), width) if index < len(row) - 1 else _cut(cell, width)
                )
                row_styles = styles[row_index][index] if styles else ""
                cells.append(self.style(shown, *row_styles.split()) if row_styles else shown)
            self.line("  ".join(cells).rstrip())


def _fit(widths: list[int], columns: int) -> list[int]:
    """Shrink the widest columns until the row fits `columns` cells (each keeps >= 8)."""
    widths = list(widths)
    while sum(widths) + 2 * (len(widths) - 1) > columns:
        widest = max(range(len(widths)), key=lambda index: widths[index])
        if widths[widest] <= 8:
            break
        widths[widest] -= 1
    return widths


def _cut(text: str, width: int) -> str:
    if text_width(text) <= width:
        return text
    out = ""
    for char in text:
        if text_width(out + char) > width - 1:
            break
        out += char
    return out + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - text_width(text))


def dumps_json(value: Any) -> str:
    """Render `value` as indented JSON (non-ASCII kept, unknown objects as strings)."""
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
