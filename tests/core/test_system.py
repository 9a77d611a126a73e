"""Shared facts: the sheet's timestamp format, usable CPUs, and the terminal status line."""

from __future__ import annotations

import io
import os
import re

from flexlock.core import StatusLine, usable_cpus, utc_now


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_utc_now_is_the_sheet_format() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_now())


def test_usable_cpus_is_the_affinity_of_this_process() -> None:
    assert len(os.sched_getaffinity(0)) == usable_cpus()


def test_status_line_redraws_in_place_and_ends_with_a_newline() -> None:
    stream = _Terminal()
    line = StatusLine(stream, enabled=True)
    line.show("1/2")
    line.show("2/2")
    line.close()
    assert "\r1/2\x1b[K\r2/2\x1b[K\n" == stream.getvalue()


def test_status_line_is_silent_off_a_terminal() -> None:
    stream = io.StringIO()
    line = StatusLine(stream)
    line.show("1/2")
    line.clear()
    line.close("done")
    assert "" == stream.getvalue()


def test_status_line_clear_erases_what_it_drew() -> None:
    stream = _Terminal()
    line = StatusLine(stream, enabled=True)
    line.clear()  # nothing drawn: nothing to erase
    line.show("working")
    line.clear()
    assert "\rworking\x1b[K\r\x1b[K" == stream.getvalue()
