"""`flexlock diff A [B]`: explain why two runs differ, or why a run would re-run now."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flexlock.cli._output import Printer
    from flexlock.core import RunDiff

__all__ = ["register"]

_SECTION_TITLES = {
    "status": "status",
    "config": "config",
    "code": "code",
    "data": "data",
    "prevs": "upstream",
    "outputs": "outputs (not part of the identity)",
    "env": "environment (not part of the identity)",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock diff`."""
    parser = subparsers.add_parser(
        "diff",
        help="explain why two runs differ, or why a run would re-run now",
        description=(
            "With two runs (directories or run.lock files): the config keys, code, data, "
            "upstream runs (recursively) and environment that differ from A to B. With one "
            "run: what running it now would record differently (code, data, upstream), and "
            "whether it would be re-run or skipped. Exit 0 in both cases (also when they "
            "differ), 2 when a sheet cannot be read."
        ),
    )
    parser.add_argument("a", metavar="A", help="run directory or run.lock")
    parser.add_argument("b", metavar="B", nargs="?", help="run directory or run.lock")
    parser.add_argument(
        "--env",
        action="store_true",
        help="list every environment difference (default: one summary line)",
    )
    parser.add_argument(
        "--no-env",
        "--no_env",
        dest="no_env",
        action="store_true",
        help="leave out environment differences (package versions, host, python)",
    )
    parser.add_argument(
        "--no-git",
        "--no_git",
        dest="no_git",
        action="store_true",
        help="do not ask git for the files changed between code trees",
    )
    parser.add_argument(
        "--base",
        metavar="DIR",
        help="base of the sheet's relative paths (one-run form; see flexlock verify --help)",
    )
    parser.add_argument("--json", action="store_true", help="print the differences as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the differences; exit 0."""
    from flexlock.cli._output import Printer, dumps_json
    from flexlock.core import diff_current, diff_runs

    reason: str | None = None
    if args.b is None:
        result, reason = diff_current(args.a, base=args.base, git=not args.no_git)
    else:
        result = diff_runs(args.a, args.b, git=not args.no_git)
    if args.no_env:
        import attrs

        result = attrs.evolve(
            result, changes=tuple(change for change in result.changes if change.section != "env")
        )
    if args.json:
        raw = result.to_dict()
        if args.b is None:
            raw["rerun_reason"] = reason
        print(dumps_json(raw))
        return 0
    printer = Printer()
    # The answer first: the rest explains it, and a long package list must not bury it.
    if args.b is None:
        if reason is None:
            printer.line(printer.status("ok", "up to date: running it again would be skipped"))
        else:
            printer.line(printer.status("changed", f"would re-run: {reason}"))
    else:
        printer.line(_verdict(printer, result))
    render(printer, result, env_details=args.env)
    return 0


def _verdict(printer: Printer, result: RunDiff) -> str:
    if result.same_identity:
        return printer.status("ok", "same identity: config, code, data and upstream runs are equal")
    differing = [
        _SECTION_TITLES[section]
        for section in ("config", "code", "data", "prevs")
        if result.section(section)
    ]
    verb = "differs" if len(differing) == 1 else "differ"
    return printer.status("changed", f"different identity: {', '.join(differing)} {verb}")


def _env_summary(changes: list[Any]) -> str:
    """Return `env: 12 packages changed, python; --env for details` for the env changes."""
    packages = sum(1 for change in changes if change.key.startswith("packages."))
    others = [change.key for change in changes if not change.key.startswith("packages.")]
    parts = [f"{packages} package{'s' if packages != 1 else ''} changed"] if packages else []
    parts += others[:4] + ([f"{len(others) - 4} more"] if len(others) > 4 else [])
    return f"env: {', '.join(parts)}; --env for details"


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def render(
    printer: Printer, result: RunDiff, indent: str = "", *, env_details: bool = False
) -> None:
    """Write the differences grouped by section, `old → new` per key.

    The environment is one summary line unless `env_details`.
    """
    from flexlock.cli._cmd_ls import short_id

    if not indent:
        printer.line(f"{printer.style('---', 'red')} {result.a}  {short_id(result.a_id)}")
        printer.line(f"{printer.style('+++', 'green')} {result.b}  {short_id(result.b_id)}")
    if result.identical:
        printer.line(f"{indent}no differences")
        return
    for section, title in _SECTION_TITLES.items():
        changes = [change for change in result.changes if change.section == section]
        if not changes:
            continue
        if section == "env" and not env_details:
            printer.line(f"{indent}{printer.style(_env_summary(changes), 'dim')}")
            continue
        printer.line(f"{indent}{printer.style(title, 'bold')}")
        width = max(len(change.key) for change in changes)
        for change in changes:
            if change.section in ("code", "prevs", "data", "outputs") and change.kind == "changed":
                old, new = _short_value(change.old), _short_value(change.new)
            else:
                old, new = _value(change.old), _value(change.new)
            if change.kind == "added":
                text = printer.status("added", f"added ({new})")
            elif change.kind == "removed":
                text = printer.status("removed", f"removed (was {old})")
            else:
                text = f"{printer.style(old, 'red')} → {printer.style(new, 'green')}"
            printer.line(f"{indent}  {change.key:<{width}}  {text}")
            for line in change.detail:
                printer.line(f"{indent}    {line}")
            if change.upstream is not None:
                render(printer, change.upstream, indent + "    ", env_details=env_details)


def _short_value(value: Any) -> str:
    from flexlock.cli._cmd_ls import short_id

    return short_id(value) if isinstance(value, str) else _value(value)
