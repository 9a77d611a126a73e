"""`flexlock show RUN`: a readable summary of a run and the tree of its upstream runs."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flexlock.cli._output import Printer

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock show`."""
    parser = subparsers.add_parser(
        "show",
        help="summarise a run: status, times, config, code, data, outputs, lineage",
        description=(
            "Print a run's status, times, config, code, data, outputs and environment, and "
            "the tree of the upstream runs it consumed. --format json prints the whole "
            "sheet; dot and mermaid print the lineage graph for Graphviz or Markdown docs."
        ),
    )
    parser.add_argument(
        "run",
        nargs="?",
        default=".",
        metavar="RUN",
        help="run directory or run.lock (default: ., the run in the current directory)",
    )
    parser.add_argument(
        "--format",
        "-f",
        choices=("text", "json", "dot", "mermaid"),
        default="text",
        help="output format (default: text)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the run; exit 0, or 2 when the sheet cannot be read."""
    from flexlock.core import resolve_lock_path

    lock_path = resolve_lock_path(args.run)
    if args.format == "text":
        # Plain data, checked like `load`: printing a sheet does not build its records.
        from flexlock.cli._output import Printer
        from flexlock.core import load_plain

        render(Printer(), load_plain(lock_path), str(lock_path.parent))
        return 0
    from flexlock.core import lineage, lineage_to_dot, lineage_to_mermaid, load, sheet_to_plain

    lock = load(lock_path)
    if args.format == "json":
        from flexlock.cli._output import dumps_json

        print(dumps_json(sheet_to_plain(lock)))
    elif args.format == "dot":
        print(lineage_to_dot(lineage(lock, str(lock_path.parent))), end="")
    else:
        print(lineage_to_mermaid(lineage(lock, str(lock_path.parent))), end="")
    return 0


def _duration(start: str, end: str | None) -> str:
    if not end:
        return ""
    from datetime import datetime

    try:
        seconds = int(
            (
                datetime.fromisoformat(end.replace("Z", "+00:00"))
                - datetime.fromisoformat(start.replace("Z", "+00:00"))
            ).total_seconds()
        )
    except ValueError:
        return ""
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f" ({hours}h{minutes:02d}m{seconds:02d}s)" if hours else f" ({minutes}m{seconds:02d}s)"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def render(printer: Printer, sheet: Mapping[str, Any], name: str) -> None:
    """Write the summary sections of one run (plain sheet data, `load_plain`), then its lineage.

    Fields at their default may be absent from `sheet`; each is read with that default.
    """
    import yaml

    printer.line(
        f"{printer.style(sheet.get('save_dir') or name, 'bold')}  "
        f"{printer.status(sheet['status'])}  {printer.style(sheet['id'], 'dim')}"
    )
    printer.line(f"  created   {sheet['created']}")
    if sheet.get("finished"):
        printer.line(
            f"  finished  {sheet['finished']}{_duration(sheet['created'], sheet['finished'])}"
        )
    error = sheet.get("error")
    if error is not None:
        printer.line(f"  error     {printer.status('failed', error['type'])}: {error['message']}")
        for line in error.get("traceback", "").strip().splitlines()[-6:]:
            printer.line(f"            {printer.style(line, 'dim')}")

    printer.line(printer.style("config", "bold"))
    if sheet.get("config"):
        text = yaml.safe_dump(
            sheet["config"],
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
            width=100,
        )
        for line in text.rstrip().splitlines():
            printer.line(f"  {line}")
    else:
        printer.line("  (empty)")

    if sheet.get("code"):
        printer.line(printer.style("code", "bold"))
        for key, repo in sheet["code"].items():
            changes = repo.get("changes", ())
            where = f"{repo['branch'] or '(detached)'} @ {(repo['commit'] or '(no commit)')[:12]}"
            state = (
                printer.status("running", f"dirty, {len(changes)} changes")
                if repo["dirty"]
                else "clean"
            )
            snapshot = f"  snapshot {repo['snapshot'][:12]}" if repo.get("snapshot") else ""
            printer.line(f"  {key}  {where}  {state}  tree {repo['tree'][:12]}{snapshot}")
            for change in changes[:10]:
                printer.line(f"      {printer.style(change, 'dim')}")
            if len(changes) > 10:
                printer.line(f"      … {len(changes) - 10} more")
            for skipped in repo.get("skipped", ()):
                printer.line(
                    f"      not in snapshot (too large): {skipped['path']} "
                    f"{_size(skipped['size'])} {skipped['hash'][:19]}"
                )

    if sheet.get("data"):
        printer.line(printer.style("data", "bold"))
        width = max(len(key) for key in sheet["data"])
        for key, record in sheet["data"].items():
            files = f", {record['files']} files" if record.get("files") is not None else ""
            printer.line(
                f"  {key:<{width}}  {record['hash'][:19]}…  {_size(record['size'])}{files}"
            )

    if sheet.get("outputs"):
        printer.line(printer.style("outputs", "bold"))
        width = max(len(key) for key in sheet["outputs"])
        for key, output in sheet["outputs"].items():
            files = f", {output['files']} files" if output.get("files") is not None else ""
            digest = f"{output['hash'][:19]}…" if output["hash"] else "(not hashed)"
            printer.line(f"  {key:<{width}}  {digest}  {_size(output['size'])}{files}")

    env = sheet.get("env")
    if env is not None:
        printer.line(printer.style("environment", "bold"))
        printer.line(f"  python {env['python']} ({env['implementation']}) on {env['platform']}")
        printer.line(f"  {env['user']}@{env['hostname']} in {env['cwd']}")
        if env.get("argv"):
            printer.line(f"  argv: {' '.join(env['argv'])}")
        if env.get("scheduler"):
            printer.line(
                "  " + " ".join(f"{key}={value}" for key, value in env["scheduler"].items())
            )
        if env.get("packages"):
            printer.line(f"  {len(env['packages'])} packages recorded")

    if sheet.get("prevs"):
        printer.line(printer.style("lineage", "bold"))
        printer.line(f"  {_node_text(printer, sheet, name)}")
        _render_children(printer, sheet, "  ", set())


# The lineage tree is read from the embedded sheets as `core.lineage` builds it: each
# prev's sheet, named by its key, with its own prevs as children.
def _node_text(printer: Printer, sheet: Mapping[str, Any], name: str) -> str:
    from flexlock.cli._cmd_ls import short_id

    return (
        f"{sheet.get('save_dir') or name}  {printer.status(sheet['status'])}  "
        f"{printer.style(short_id(sheet['id']), 'dim')}"
    )


def _render_children(
    printer: Printer, sheet: Mapping[str, Any], prefix: str, seen: set[str]
) -> None:
    prevs = list(sheet.get("prevs", {}).items())
    for index, (key, prev) in enumerate(prevs):
        child = prev["lock"]
        last = index == len(prevs) - 1
        branch = "└── " if last else "├── "
        repeated = child["id"] in seen
        suffix = printer.style("  (seen above)", "dim") if repeated and child.get("prevs") else ""
        printer.line(f"{prefix}{branch}{_node_text(printer, child, key)}{suffix}")
        if repeated:
            continue
        seen.add(child["id"])
        _render_children(printer, child, prefix + ("    " if last else "│   "), seen)
