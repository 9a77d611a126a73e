"""`flexlock verify RUN...`: check runs against their sheets (data, code, upstream, outputs)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from flexlock.cli._output import Printer
    from flexlock.core import CodeCheck, DataCheck, PrevCheck, VerifyReport

__all__ = ["register"]

_MAX_FILES_SHOWN = 20


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock verify`."""
    parser = subparsers.add_parser(
        "verify",
        help="check that a run's data, code, upstream runs and outputs still match its sheet",
        description=(
            "Re-hash every data input of each run and compare with its run.lock (missing, "
            "extra, changed and unreadable files reported separately), compare each repo's "
            "current tree with the recorded tree, and check that upstream sheets still have "
            "their recorded ids, and that the outputs the run left in its save_dir are unchanged "
            "(none missing, none added since). Exit 0 when everything matches, 3 on any "
            "mismatch, 2 when a sheet cannot be read."
        ),
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directory or run.lock")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="compare size, file count and modification time only (contents not hashed)",
    )
    parser.add_argument(
        "--cached",
        action="store_true",
        help="trust the hash cache for files whose size, mtime and inode are unchanged",
    )
    parser.add_argument(
        "--recursive", "-r", action="store_true", help="also verify every upstream run"
    )
    parser.add_argument(
        "--base",
        metavar="DIR",
        help="directory the sheet's relative paths are relative to (default: the project "
        "directory the run sits in, else the recorded cwd, else the current directory)",
    )
    for section in ("data", "code", "prevs", "outputs"):
        parser.add_argument(
            f"--no-{section}",
            f"--no_{section}",
            dest=f"no_{section}",
            action="store_true",
            help=f"skip the {section} checks",
        )
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Verify each run; exit 3 if any check failed."""
    from flexlock.cli._output import Printer, dumps_json
    from flexlock.core import verify

    reports = [
        verify(
            target,
            fast=args.fast,
            use_cache=args.cached,
            base=args.base,
            data=not args.no_data,
            code=not args.no_code,
            prevs=not args.no_prevs,
            outputs=not args.no_outputs,
            recursive=args.recursive,
        )
        for target in args.runs
    ]
    if args.json:
        print(
            dumps_json(
                reports[0].to_dict()
                if len(reports) == 1
                else [report.to_dict() for report in reports]
            )
        )
    else:
        printer = Printer()
        for index, report in enumerate(reports):
            if index:
                printer.line()
            render(printer, report)
    return 0 if all(report.ok for report in reports) else 3


def render(printer: Printer, report: VerifyReport, indent: str = "") -> None:
    """Write a readable report: one line per check, the files that differ under it."""
    from flexlock.cli._cmd_ls import short_id

    mode = (
        "full check: contents re-hashed"
        if report.mode == "full"
        else "FAST check: size, file count and mtime only; contents NOT hashed"
    )
    printer.line(
        f"{indent}{printer.style(report.path, 'bold')}  "
        f"{printer.style(short_id(report.id), 'dim')}  ({mode})"
    )
    sections: list[tuple[str, Sequence[DataCheck | CodeCheck | PrevCheck]]] = [
        ("data", report.data),
        ("code", report.code),
        ("prev", report.prevs),
        ("out", report.outputs),
    ]
    labelled = [(section, check) for section, group in sections for check in group]
    checks = [check for _, check in labelled]
    if not checks:
        printer.line(f"{indent}  nothing recorded to check")
    width = max((len(check.name) for check in checks), default=0)
    for section, check in labelled:
        line = f"{indent}  {section:<4}  {check.name:<{width}}  {printer.status(check.status)}"
        if check.detail:
            line += f"  {check.detail}"
        printer.line(line)
        for label, files in _file_lists(check):
            for path in files[:_MAX_FILES_SHOWN]:
                printer.line(f"{indent}          {printer.status(label, _MARKS[label])} {path}")
            if len(files) > _MAX_FILES_SHOWN:
                printer.line(
                    f"{indent}          … {len(files) - _MAX_FILES_SHOWN} more {label} "
                    "(--json lists all)"
                )
        for line in getattr(check, "files", ())[:_MAX_FILES_SHOWN]:  # git name-status lines
            printer.line(f"{indent}          {line.replace(chr(9), '  ')}")
        report_of_upstream = getattr(check, "report", None)
        if report_of_upstream is not None:
            render(printer, report_of_upstream, indent + "    ")
    if indent:
        return
    failed = [check for check in checks if check.status != "ok"]
    if report.ok:
        printer.line(printer.status("ok", f"ok: {len(checks)} checks passed"))
    else:
        count = len(failed) or "upstream"
        printer.line(printer.status("changed", f"MISMATCH: {count} of {len(checks)} checks failed"))


_MARKS = {"missing": "-", "extra": "+", "changed": "~", "unreadable": "!"}


def _file_lists(check: object) -> list[tuple[str, tuple[str, ...]]]:
    lists = []
    for label in ("missing", "extra", "changed", "unreadable"):
        files = getattr(check, label, ())
        if files:
            lists.append((label, files))
    return lists
