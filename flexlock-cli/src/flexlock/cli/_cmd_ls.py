"""`flexlock ls [DIR...]`: a table of the runs found under directories."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flexlock.cli._output import Printer
    from flexlock.core import RunSummary

__all__ = ["register"]

_DEFAULT_CONFIG_COLUMNS = 6
_FIELDS = ("created", "finished", "status", "id", "save_dir", "path")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock ls`."""
    parser = subparsers.add_parser(
        "ls",
        help="list the runs under directories",
        description=(
            "List the runs (directories holding a run.lock) under each DIR: status, id prefix, "
            "creation time, directory and the config values that differ between the runs. "
            "Run directories' own files are not searched (see --deep)."
        ),
    )
    parser.add_argument("dirs", nargs="*", default=["."], metavar="DIR", help="default: .")
    parser.add_argument(
        "--status",
        action="append",
        default=[],
        metavar="STATUS",
        help="only runs with this status (queued, running, succeeded, failed, invalid); "
        "repeatable, or comma-separated",
    )
    parser.add_argument(
        "-o",
        "--match",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only runs whose config KEY (dotted) equals VALUE (YAML-typed, or an fnmatch "
        "pattern such as 'resnet*'); repeatable, all must match",
    )
    parser.add_argument(
        "--sort",
        default="created",
        metavar="FIELD",
        help=f"sort by one of {', '.join(_FIELDS)} or a dotted config key (default: created)",
    )
    parser.add_argument("-r", "--reverse", action="store_true", help="reverse the order")
    parser.add_argument(
        "-c",
        "--columns",
        default=None,
        metavar="KEYS",
        help="comma-separated config keys to show (default: the keys whose values differ "
        "between the listed runs)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")
    add_search_options(parser)
    parser.set_defaults(handler=run)


def add_search_options(parser: argparse.ArgumentParser, *, cache: bool = True) -> None:
    """Add how runs are found under the DIRs: the options `ls`, `status` and `graph` share."""
    parser.add_argument(
        "--deep", action="store_true", help="also search inside run directories' own files"
    )
    if cache:
        parser.add_argument(
            "--no-cache",
            "--no_cache",
            dest="no_cache",
            action="store_true",
            help="re-read every sheet instead of reusing the summaries of unchanged sheets "
            "kept in the flexlock cache directory",
        )
    parser.add_argument(
        "--follow-symlinks",
        "--follow_symlinks",
        action="store_true",
        help="enter symlinked directories",
    )


def _parse_filters(texts: Sequence[str]) -> list[tuple[str, str]]:
    from flexlock.core import ConfigError

    filters = []
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"-o {text!r}: expected KEY=VALUE, e.g. -o model.lr=0.1")
        filters.append((key.strip(), value))
    return filters


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys ({"a": {"b": 1}} -> {"a.b": 1})."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _cell(value: Any) -> str:
    from flexlock.core import is_missing

    if is_missing(value):
        return "-"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        import json

        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _varying_keys(flat_configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the config keys that take two or more values among the runs that have them.

    A key missing from some runs (another script's, or a field added since) is not
    varying by that alone: `seed: 1` in every run that has a seed is constant.
    First-seen order.
    """
    if len(flat_configs) < 2:
        return []
    values: dict[str, list[Any]] = {}
    for flat in flat_configs:
        for key, value in flat.items():
            values.setdefault(key, []).append(value)
    return [
        key
        for key, seen in values.items()
        if key != "save_dir" and any(value != seen[0] for value in seen[1:])  # a column already
    ]


def _groups(summaries: Sequence[RunSummary]) -> dict[str, list[RunSummary]]:
    """Group runs by the directory holding their run directory, in listing order.

    A task list's runs share their save_dir (`results/process/param=1`, ...);
    different scripts' runs usually live in different folders, or at least differ
    from a task list's.
    """
    groups: dict[str, list[RunSummary]] = {}
    for summary in summaries:
        groups.setdefault(str(summary.run_dir.parent), []).append(summary)
    return groups


def _sort_key(field: str) -> Any:
    from flexlock.core import is_missing, lookup

    def key(summary: RunSummary) -> tuple[int, str, Any]:
        if field in _FIELDS:
            value: Any = str(summary.path) if field == "path" else getattr(summary, field)
        else:
            value = lookup(summary.config, field)
            if is_missing(value):
                value = None
        # Missing values last; numbers by value; everything else by its text.
        if value is None:
            return (2, "", 0)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, "", value)
        return (1, _cell(value), 0)

    return key


def short_id(run_id: str, length: int = 12) -> str:
    """Return the first `length` hex digits of a run id ("sha256:3f2a..." -> "3f2a...")."""
    return run_id.partition(":")[2][:length] if ":" in run_id else run_id[:length]


def run(args: argparse.Namespace) -> int:
    """List runs; exit 0 (also when nothing matched), 2 for a bad directory or filter."""
    from flexlock.cli._output import Printer, dumps_json
    from flexlock.core import SummaryCache, find_runs, matches, read_summary

    filters = _parse_filters(args.match)
    statuses = {part.strip() for text in args.status for part in text.split(",") if part.strip()}
    summaries = []
    for directory in args.dirs:
        cache = None if args.no_cache else SummaryCache(directory)
        for lock_path in find_runs(directory, deep=args.deep, follow_symlinks=args.follow_symlinks):
            summary = read_summary(lock_path) if cache is None else cache.summary(lock_path)
            # A queued or running run may turn out failed (its job died): kept until asked.
            if statuses and summary.status not in statuses | {"queued", "running"}:
                continue
            if filters and not matches(summary, filters):
                continue
            summaries.append(summary)
        if cache is not None:
            cache.save()
    summaries = _settle_in_flight(summaries, statuses)
    summaries.sort(key=_sort_key(args.sort), reverse=args.reverse)
    for summary in summaries:
        if summary.problem:
            print(f"flexlock: warning: {summary.problem}", file=sys.stderr)

    if args.json:
        print(dumps_json([summary.to_dict() for summary in summaries]))
        return 0

    line = _summary_line(summaries)
    if line is not None:
        print(f"flexlock ls: {line}", file=sys.stderr)
    printer = Printer()
    if not summaries:
        where = ", ".join(args.dirs)
        print(
            f"no runs under {where}" + (" matching the filters" if filters or statuses else ""),
            file=sys.stderr,
        )
        return 0
    if args.columns is not None:
        keys = [key.strip() for key in args.columns.split(",") if key.strip()]
        _table(printer, summaries, keys)
        return 0
    groups = _groups(summaries) if len(summaries) > 1 else {"": summaries}
    for number, (parent, members) in enumerate(groups.items()):
        if len(groups) > 1:
            if number:
                printer.line()
            count = f"{len(members)} run{'s' if len(members) != 1 else ''}"
            printer.line(printer.style(f"{parent}/  ({count})", "bold"))
        varying = _varying_keys([flatten(summary.config) for summary in members])
        _table(printer, members, varying[:_DEFAULT_CONFIG_COLUMNS])
        hidden = varying[_DEFAULT_CONFIG_COLUMNS:]
        if hidden:
            shown = ", ".join(hidden[:3]) + (", ..." if len(hidden) > 3 else "")
            print(
                f"flexlock ls: {len(hidden)} more varying config key"
                f"{'s' if len(hidden) != 1 else ''} not shown ({shown}); "
                "choose columns with --columns KEY,KEY",
                file=sys.stderr,
            )
    return 0


def _settle_in_flight(summaries: list[RunSummary], statuses: set[str]) -> list[RunSummary]:
    """Ask the scheduler once about the queued and running runs; re-read what it changed.

    The `slurm` executor (when installed) finalises as failed the sheets whose job
    Slurm calls dead, so a cancelled or timed-out sweep is not listed as in flight.
    """
    from flexlock.core import PluginError, load_plugin, plugin_names, read_summary

    def wanted(found: Sequence[RunSummary]) -> list[RunSummary]:
        return [s for s in found if not statuses or s.status in statuses]

    in_flight = [s for s in summaries if s.status in ("queued", "running")]
    if not in_flight or "slurm" not in plugin_names("flexlock.executors"):
        return wanted(summaries)
    try:
        executor = load_plugin("flexlock.executors", "slurm")({})
    except PluginError:
        return wanted(summaries)
    now = executor.statuses([str(summary.run_dir) for summary in in_flight])
    changed = {
        summary.path
        for summary in in_flight
        if now.get(str(summary.run_dir), summary.status) != summary.status
    }
    fresh = [read_summary(s.path) if s.path in changed else s for s in summaries]
    return wanted(fresh)


def _summary_line(summaries: Sequence[RunSummary]) -> str | None:
    """`3 queued, 2 running, 10 succeeded, 1 failed` when some runs are in flight."""
    counts = dict.fromkeys(("queued", "running", "succeeded", "failed"), 0)
    for summary in summaries:
        if summary.status in counts:
            counts[summary.status] += 1
    if not counts["queued"] and not counts["running"]:
        return None
    return ", ".join(f"{n} {name}" for name, n in counts.items())


def _table(printer: Printer, summaries: Sequence[RunSummary], keys: Sequence[str]) -> None:
    from flexlock.cli._output import STATUS_STYLES
    from flexlock.core import lookup

    rows = []
    styles = []
    for summary in summaries:
        created = summary.created.replace("T", " ").removesuffix("Z")
        row = [summary.status, short_id(summary.id), created, str(summary.run_dir)]
        row += [_cell(lookup(summary.config, key)) for key in keys]
        rows.append(row)
        styles.append([STATUS_STYLES.get(summary.status, ""), "dim", "", "", *([""] * len(keys))])
    printer.table(["status", "id", "created", "save_dir", *keys], rows, styles=styles)
