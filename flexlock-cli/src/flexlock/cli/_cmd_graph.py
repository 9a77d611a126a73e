"""`flexlock graph [DIR...]`: the project's lineage as a picture, coloured by `status`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flexlock.cli._cmd_ls import add_search_options

if TYPE_CHECKING:
    from flexlock.cli._graph import Graph

__all__ = ["register"]

_FORMATS = ("mermaid", "dot", "svg", "html", "json")
_SUFFIXES = {
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".md": "mermaid",
    ".dot": "dot",
    ".gv": "dot",
    ".svg": "svg",
    ".html": "html",
    ".htm": "html",
    ".json": "json",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock graph`."""
    parser = subparsers.add_parser(
        "graph",
        help="draw the project's lineage as a graph coloured by status (mermaid, dot, svg, html)",
        description=(
            "Draw every run under each DIR as a node, an arrow from each upstream run to "
            "the runs that consumed it, coloured by its state as `flexlock status` finds it "
            "(a dashed arrow: the consumer is stale because of that upstream run). The runs "
            "of a task list (one directory, the same config keys) are boxed together, or "
            "drawn as one node counting them by state from --collapse runs on; in the HTML "
            "page a click on that node lists its runs. The SVG and HTML are drawn by "
            "flexlock itself: one file, no network, nothing to install. Exit 0 when the "
            "graph was written (whatever the runs' states), 2 when a DIR does not exist."
        ),
    )
    parser.add_argument("dirs", nargs="*", default=["."], metavar="DIR", help="default: .")
    parser.add_argument(
        "--format",
        "-f",
        choices=_FORMATS,
        default=None,
        help="output format (default: from the --output suffix, else mermaid)",
    )
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write the graph to FILE (atomically) instead of printing it",
    )
    parser.add_argument(
        "--collapse",
        type=int,
        default=4,
        metavar="N",
        help="draw a task list of N runs or more as one node (default: 4; 0: never)",
    )
    parser.add_argument(
        "--data",
        action="store_true",
        help="also draw each data input as a node, joined to the run whose directory holds it",
    )
    parser.add_argument("--title", help="title of the SVG / HTML picture (default: the DIRs)")
    add_search_options(parser, cache=False)
    parser.set_defaults(handler=run)


def _format(args: argparse.Namespace) -> str:
    from flexlock.core import ConfigError

    if args.format is not None:
        return str(args.format)
    if args.output is None:
        return "mermaid"
    suffix = Path(args.output).suffix.lower()
    if suffix not in _SUFFIXES:
        raise ConfigError(
            f"--output {args.output}: cannot tell the format from {suffix or 'no suffix'!r}; "
            f"pass --format ({', '.join(_FORMATS)})"
        )
    return _SUFFIXES[suffix]


def run(args: argparse.Namespace) -> int:
    """Write the graph; exit 0."""
    from flexlock.cli._graph import build_graph, to_dot, to_mermaid
    from flexlock.cli._output import dumps_json
    from flexlock.core import ConfigError, project_status, write_atomic

    if args.collapse < 0:
        raise ConfigError(f"--collapse {args.collapse}: expected 0 (never) or a positive count")
    kind = _format(args)
    states = project_status(args.dirs, deep=args.deep, follow_symlinks=args.follow_symlinks)
    if not states:
        print(f"flexlock graph: no runs under {', '.join(args.dirs)}", file=sys.stderr)
    graph = build_graph(states, collapse=args.collapse, data=args.data)
    title = args.title or f"Lineage of {', '.join(args.dirs)}"
    if kind == "mermaid":
        text = to_mermaid(graph)
    elif kind == "dot":
        text = to_dot(graph)
    elif kind == "json":
        text = dumps_json(_plain(graph)) + "\n"
    else:
        from flexlock.cli._graph_svg import to_html, to_svg

        text = to_svg(graph, title) if kind == "svg" else to_html(graph, title)
    if args.output is None:
        sys.stdout.write(text)
    else:
        write_atomic(Path(args.output), text.encode("utf-8"))
        print(f"flexlock graph: wrote {args.output} ({len(graph.nodes)} nodes)", file=sys.stderr)
    return 0


def _plain(graph: Graph) -> dict[str, Any]:
    return {
        "nodes": [
            {
                "key": node.key,
                "kind": node.kind,
                "label": node.label,
                "state": node.state,
                "note": node.note,
                "counts": dict(node.counts),
                "varying": list(node.varying),
                "runs": [str(member.summary.run_dir) for member in node.members],
            }
            for node in graph.nodes
        ],
        "edges": [
            {"source": edge.source, "target": edge.target, "stale": edge.stale}
            for edge in graph.edges
        ],
        "clusters": [
            {"label": cluster.label, "nodes": list(cluster.nodes)} for cluster in graph.clusters
        ],
    }
