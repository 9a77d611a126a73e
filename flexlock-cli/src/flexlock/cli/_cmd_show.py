"""`flexlock show RUN`: a readable summary of a run and the tree of its upstream runs."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flexlock.cli._output import Printer
    from flexlock.core import LineageNode, RunLock

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
    from flexlock.cli._output import Printer, dumps_json
    from flexlock.core import (
        lineage,
        lineage_to_dot,
        lineage_to_mermaid,
        load,
        resolve_lock_path,
        sheet_to_plain,
    )

    lock_path = resolve_lock_path(args.run)
    lock = load(lock_path)
    if args.format == "json":
        print(dumps_json(sheet_to_plain(lock)))
    elif args.format == "dot":
        print(lineage_to_dot(lineage(lock, str(lock_path.parent))), end="")
    elif args.format == "mermaid":
        print(lineage_to_mermaid(lineage(lock, str(lock_path.parent))), end="")
    else:
        render(Printer(), lock, str(lock_path.parent))
    return 0


def _duration(start: str, end: str | None) -> str:
    if not end:
        return ""
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


def render(printer: Printer, lock: RunLock, name: str) -> None:
    """Write the summary sections of one run, then its lineage tree."""
    import yaml

    printer.line(
        f"{printer.style(lock.save_dir or name, 'bold')}  {printer.status(lock.status)}  "
        f"{printer.style(lock.id, 'dim')}"
    )
    printer.line(f"  created   {lock.created}")
    if lock.finished:
        printer.line(f"  finished  {lock.finished}{_duration(lock.created, lock.finished)}")
    if lock.error is not None:
        printer.line(
            f"  error     {printer.status('failed', lock.error.type)}: {lock.error.message}"
        )
        for line in lock.error.traceback.strip().splitlines()[-6:]:
            printer.line(f"            {printer.style(line, 'dim')}")

    printer.line(printer.style("config", "bold"))
    if lock.config:
        text = yaml.safe_dump(
            lock.config, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
        )
        for line in text.rstrip().splitlines():
            printer.line(f"  {line}")
    else:
        printer.line("  (empty)")

    if lock.code:
        printer.line(printer.style("code", "bold"))
        for key, repo in lock.code.items():
            where = f"{repo.branch or '(detached)'} @ {(repo.commit or '(no commit)')[:12]}"
            state = (
                printer.status("running", f"dirty, {len(repo.changes)} changes")
                if repo.dirty
                else "clean"
            )
            snapshot = f"  snapshot {repo.snapshot[:12]}" if repo.snapshot else ""
            printer.line(f"  {key}  {where}  {state}  tree {repo.tree[:12]}{snapshot}")
            for change in repo.changes[:10]:
                printer.line(f"      {printer.style(change, 'dim')}")
            if len(repo.changes) > 10:
                printer.line(f"      … {len(repo.changes) - 10} more")
            for skipped in repo.skipped:
                printer.line(
                    f"      not in snapshot (too large): {skipped.path} "
                    f"{_size(skipped.size)} {skipped.hash[:19]}"
                )

    if lock.data:
        printer.line(printer.style("data", "bold"))
        width = max(len(key) for key in lock.data)
        for key, record in lock.data.items():
            files = f", {record.files} files" if record.files is not None else ""
            printer.line(f"  {key:<{width}}  {record.hash[:19]}…  {_size(record.size)}{files}")

    if lock.outputs:
        printer.line(printer.style("outputs", "bold"))
        width = max(len(key) for key in lock.outputs)
        for key, output in lock.outputs.items():
            files = f", {output.files} files" if output.files is not None else ""
            digest = f"{output.hash[:19]}…" if output.hash else "(not hashed)"
            printer.line(f"  {key:<{width}}  {digest}  {_size(output.size)}{files}")

    if lock.env is not None:
        env = lock.env
        printer.line(printer.style("environment", "bold"))
        printer.line(f"  python {env.python} ({env.implementation}) on {env.platform}")
        printer.line(f"  {env.user}@{env.hostname} in {env.cwd}")
        if env.argv:
            printer.line(f"  argv: {' '.join(env.argv)}")
        if env.scheduler:
            printer.line("  " + " ".join(f"{key}={value}" for key, value in env.scheduler.items()))
        if env.packages:
            printer.line(f"  {len(env.packages)} packages recorded")

    if lock.prevs:
        from flexlock.core import lineage

        printer.line(printer.style("lineage", "bold"))
        tree = lineage(lock, name)
        printer.line(f"  {_node_text(printer, tree)}")
        _render_children(printer, tree, "  ", set())


def _node_text(printer: Printer, node: LineageNode) -> str:
    from flexlock.cli._cmd_ls import short_id

    return (
        f"{node.lock.save_dir or node.name}  {printer.status(node.lock.status)}  "
        f"{printer.style(short_id(node.lock.id), 'dim')}"
    )


def _render_children(printer: Printer, node: LineageNode, prefix: str, seen: set[str]) -> None:
    for index, child in enumerate(node.children):
        last = index == len(node.children) - 1
        branch = "└── " if last else "├── "
        repeated = child.lock.id in seen
        suffix = printer.style("  (seen above)", "dim") if repeated and child.children else ""
        printer.line(f"{prefix}{branch}{_node_text(printer, child)}{suffix}")
        if repeated:
            continue
        seen.add(child.lock.id)
        _render_children(printer, child, prefix + ("    " if last else "│   "), seen)
