"""`flexlock status [DIR...]`: which runs are up to date, which must run again and why."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from flexlock.cli._cmd_ls import add_search_options

if TYPE_CHECKING:
    from pathlib import Path

    from flexlock.core import RunState

__all__ = ["describe_reasons", "register", "shown_path"]

_STATES = ("up to date", "stale", "failed", "running", "invalid")
_SUBJECTS_SHOWN = 2  # per kind of reason, in the table; --json lists every one
STATE_STYLES = {
    "up to date": "green",
    "stale": "yellow",
    "failed": "red",
    "running": "cyan",
    "invalid": "magenta",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock status`."""
    parser = subparsers.add_parser(
        "status",
        help="say which runs are up to date and why the others must run again",
        description=(
            "List every run under each DIR, upstream runs first, each marked up to date, "
            "stale (with the reasons: upstream re-run, upstream stale, data changed, code "
            "changed), failed, running or invalid. A run is stale when a data input's hash, a "
            "repository's tree or an upstream run's id is no longer what its sheet recorded, "
            "or when an upstream run is itself stale. Data is re-hashed through the hash cache "
            "(a stat per unchanged file), each repository is captured once. Exit 0 when every "
            "run is up to date (or running), 3 when any is stale, failed or invalid, 2 when a "
            "DIR does not exist."
        ),
    )
    parser.add_argument("dirs", nargs="*", default=["."], metavar="DIR", help="default: .")
    parser.add_argument(
        "--state",
        action="append",
        default=[],
        metavar="STATE",
        help=f"only show runs in this state ({', '.join(_STATES)}); repeatable, or "
        "comma-separated; the exit code still covers every run",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")
    add_search_options(parser)
    parser.set_defaults(handler=run)


def shown_path(path: Path) -> str:
    """Name a path relative to the current directory when it is below it, else in full."""
    text = os.fspath(path)
    if not path.is_absolute():
        return text
    relative = os.path.relpath(text)
    return text if relative.startswith("..") else relative


def describe_reasons(state: RunState, subjects_shown: int = _SUBJECTS_SHOWN) -> str:
    """Return the reasons of `state` on one line, the subjects of each kind together."""
    if state.state == "failed":
        return state.summary.error or "failed"
    if state.state == "running":
        return f"started {state.summary.created}"
    if state.state == "invalid":
        return state.summary.problem or "unreadable run.lock"
    kinds: dict[str, list[str]] = {}
    for reason in state.reasons:
        detail = f" ({reason.detail})" if reason.detail and reason.kind != "upstream stale" else ""
        kinds.setdefault(reason.kind, []).append(reason.subject + detail)
    parts = []
    for kind, subjects in kinds.items():
        more = len(subjects) - subjects_shown
        listed = ", ".join(subjects[:subjects_shown]) + (f" (+{more} more)" if more > 0 else "")
        parts.append(f"{kind}: {listed}")
    return "; ".join(parts)


def _wanted_states(texts: Sequence[str]) -> set[str]:
    from flexlock.core import ConfigError

    wanted = {part.strip() for text in texts for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(_STATES))
    if unknown:
        raise ConfigError(f"--state {unknown[0]!r}: not a state; choose from {', '.join(_STATES)}")
    return wanted


def run(args: argparse.Namespace) -> int:
    """Print the state of every run; exit 3 when any must run again."""
    from flexlock.cli._output import Printer, dumps_json
    from flexlock.core import count_states, project_status

    wanted = _wanted_states(args.state)
    states = project_status(
        args.dirs,
        deep=args.deep,
        follow_symlinks=args.follow_symlinks,
        use_summary_cache=not args.no_cache,
    )
    code = 3 if any(state.state in ("stale", "failed", "invalid") for state in states) else 0
    shown = [state for state in states if not wanted or state.state in wanted]
    if args.json:
        print(dumps_json([state.to_dict() for state in shown]))
        return code
    if not states:
        print(f"no runs under {', '.join(args.dirs)}", file=sys.stderr)
        return code
    printer = Printer()
    rows, styles = [], []
    for state in shown:
        where = shown_path(state.summary.run_dir) + (" (outside)" if state.outside else "")
        rows.append([state.state, where, describe_reasons(state)])
        styles.append([STATE_STYLES[state.state], "", ""])
    if rows:
        printer.table(["state", "run", "why"], rows, styles=styles)
    counts = count_states(states)
    total = f"{len(states)} run{'s' if len(states) != 1 else ''}"
    summary = f"{total}: " + ", ".join(f"{count} {name}" for name, count in counts.items())
    if counts.get("stale"):
        summary += "; re-run the stale ones in the order listed (upstream first)"
    printer.line(summary)
    return code
