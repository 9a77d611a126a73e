"""The project's lineage as a graph (`flexlock graph`): nodes, edges, task lists; mermaid and dot.

Built from `flexlock.core.project_status`: one node per run, coloured by its state, an
edge from each upstream run to the run that consumed it. The runs of a task list (runs
in one directory with the same config keys, as `@clicfg` lays a task list out:
`results/train/optim.lr=0.1`, ...) are drawn inside one box, or, from `collapse` runs
on, as a single node that counts them by state. Data inputs are nodes too on request,
joined to the run whose directory holds them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs

from flexlock.cli._cmd_ls import _varying_keys, flatten
from flexlock.cli._cmd_status import describe_reasons, shown_path

if TYPE_CHECKING:
    from flexlock.core import RunState

__all__ = ["STATE_COLORS", "Edge", "Graph", "Node", "build_graph", "to_dot", "to_mermaid"]

#: (stroke, fill) of each state; "data" and "changed" are data inputs.
STATE_COLORS: Mapping[str, tuple[str, str]] = {
    "up to date": ("#2e7d32", "#e3f4e4"),
    "stale": ("#e65100", "#ffe6c7"),
    "failed": ("#c62828", "#fbdcdc"),
    "running": ("#1565c0", "#dcebfb"),
    "invalid": ("#6a1b9a", "#efdff5"),
    "data": ("#546e7a", "#eef1f3"),
    "changed": ("#e65100", "#ffe6c7"),
}

# A task list's colour is its worst run's: what needs attention shows from afar.
_SEVERITY = ("invalid", "failed", "stale", "running", "up to date")
_UPSTREAM_KINDS = frozenset({"upstream re-run", "upstream stale", "upstream missing"})


@attrs.frozen
class Node:
    """A run, a task list (collapsed) or a data input."""

    key: str  # an identifier valid in dot, mermaid and HTML: n0, n1, ...
    kind: Literal["run", "tasks", "data"]
    label: str  # the run directory, task list directory or data path, as shown
    state: str  # a run state (a task list: its worst run's), or "data" / "changed"
    note: str = ""  # one line under the label: the state and why, or the counts
    members: tuple[RunState, ...] = ()  # the run itself, or every run of the task list
    counts: Mapping[str, int] = attrs.field(factory=dict)  # task list: runs per state
    varying: tuple[str, ...] = ()  # task list: the config keys its runs differ in


@attrs.frozen
class Edge:
    """Upstream to downstream; `stale` when the downstream run is stale because of it."""

    source: str
    target: str
    stale: bool = False


@attrs.frozen
class Cluster:
    """The runs of a task list drawn one by one, inside one box."""

    label: str
    nodes: tuple[str, ...]


@attrs.frozen
class Graph:
    """Nodes in lineage order (upstream first), edges, and the task lists drawn as boxes."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    clusters: tuple[Cluster, ...] = ()

    def counts(self) -> dict[str, int]:
        """Return how many runs are in each state, task lists' runs included."""
        counts: dict[str, int] = {}
        for node in self.nodes:
            for member in node.members:
                counts[member.state] = counts.get(member.state, 0) + 1
        return {state: counts[state] for state in reversed(_SEVERITY) if state in counts}


def _task_lists(states: Sequence[RunState]) -> list[list[RunState]]:
    """Group runs into task lists (same directory, same config keys) and single runs."""
    groups: dict[tuple[str, frozenset[str]], list[RunState]] = {}
    for state in states:
        keys = frozenset(flatten(state.summary.config)) - {"save_dir"}
        parent = os.fspath(state.summary.run_dir.parent)
        groups.setdefault((parent, keys), []).append(state)
    return list(groups.values())


def _worst(states: Sequence[str]) -> str:
    return min(states, key=_SEVERITY.index) if states else "up to date"


def _run_note(state: RunState) -> str:
    """Say the state and the kinds of reasons (the subjects are in the tooltip and table)."""
    if state.state == "stale":
        return "stale: " + ", ".join(dict.fromkeys(reason.kind for reason in state.reasons))
    if state.state == "up to date":
        return state.state
    return f"{state.state}: {describe_reasons(state)}"


def _count_note(counts: Mapping[str, int]) -> str:
    total = sum(counts.values())
    parts = ", ".join(f"{count} {state}" for state, count in counts.items())
    return f"{total} runs: {parts}"


def build_graph(states: Sequence[RunState], *, collapse: int = 4, data: bool = False) -> Graph:
    """Build the lineage graph of `states` (from `project_status`).

    Args:
        states: the runs, upstream first.
        collapse: a task list of this many runs or more becomes one node (0: never).
        data: add a node per data input, joined to the run whose directory holds it.
    """
    nodes: list[Node] = []
    clusters: list[Cluster] = []
    node_of: dict[Path, str] = {}  # run.lock -> the node drawing it

    def new_key() -> str:
        return f"n{len(nodes)}"

    for group in _task_lists(states):
        if len(group) > 1 and 0 < collapse <= len(group):
            key = new_key()
            counts = {
                state: n
                for state in reversed(_SEVERITY)
                if (n := sum(member.state == state for member in group))
            }
            varying = _varying_keys([flatten(member.summary.config) for member in group])
            parent = shown_path(group[0].summary.run_dir.parent)
            nodes.append(
                Node(
                    key,
                    "tasks",
                    parent.rstrip("/") + "/",
                    _worst([member.state for member in group]),
                    _count_note(counts),
                    tuple(group),
                    counts,
                    tuple(varying),
                )
            )
            node_of.update((_key(member.path), key) for member in group)
            continue
        keys = []
        for state in group:
            key = new_key()
            label = shown_path(state.summary.run_dir)
            nodes.append(Node(key, "run", label, state.state, _run_note(state), (state,)))
            node_of[_key(state.path)] = key
            keys.append(key)
        if len(group) > 1:
            clusters.append(Cluster(shown_path(group[0].summary.run_dir.parent) + "/", tuple(keys)))
    position = {id(state): index for index, state in enumerate(states)}
    nodes.sort(key=lambda node: position[id(node.members[0])])
    # Keys follow the drawing order (n0 upstream-most), whatever the grouping found first.
    renamed = {node.key: f"n{index}" for index, node in enumerate(nodes)}
    nodes = [attrs.evolve(node, key=renamed[node.key]) for node in nodes]
    node_of = {path: renamed[key] for path, key in node_of.items()}
    clusters = [
        attrs.evolve(cluster, nodes=tuple(renamed[key] for key in cluster.nodes))
        for cluster in clusters
    ]
    edges: dict[tuple[str, str], bool] = {}
    for state in states:
        target = node_of[_key(state.path)]
        blamed = {reason.subject for reason in state.reasons if reason.kind in _UPSTREAM_KINDS}
        for prev_key, upstream in state.prevs:
            source = node_of.get(_key(upstream))
            if source is None or source == target:
                continue
            edges[source, target] = edges.get((source, target), False) or prev_key in blamed
    if data:
        _add_data(states, nodes, node_of, edges)
        _route_through_data(nodes, edges)
    return Graph(
        tuple(nodes),
        tuple(Edge(source, target, stale) for (source, target), stale in edges.items()),
        tuple(clusters),
    )


def _key(path: Path) -> Path:
    return Path(os.path.abspath(path))  # noqa: PTH100 - as project_status keys its runs


def _add_data(
    states: Sequence[RunState],
    nodes: list[Node],
    node_of: Mapping[Path, str],
    edges: dict[tuple[str, str], bool],
) -> None:
    """Add a node per data input, an edge from the run holding it and to each consumer."""
    run_dirs = {_key(path).parent: key for path, key in node_of.items()}
    data_nodes: dict[Path, int] = {}
    for state in states:
        consumer = node_of[_key(state.path)]
        changed = {reason.subject for reason in state.reasons if reason.kind == "data changed"}
        for data_key, target in state.data:
            where = _key(target)
            if where not in data_nodes:
                data_nodes[where] = len(nodes)
                nodes.append(Node(f"n{len(nodes)}", "data", shown_path(target), "data"))
                producer = next(
                    (run_dirs[parent] for parent in where.parents if parent in run_dirs), None
                )
                if producer is not None:
                    edges[producer, nodes[-1].key] = False
            index = data_nodes[where]
            if data_key in changed:
                nodes[index] = attrs.evolve(nodes[index], state="changed", note="changed")
            edges[nodes[index].key, consumer] = data_key in changed or edges.get(
                (nodes[index].key, consumer), False
            )


def _route_through_data(nodes: Sequence[Node], edges: dict[tuple[str, str], bool]) -> None:
    """Drop the run-to-run edges that a data node already joins (producer -> data -> consumer).

    The data edge takes over the dropped edge's staleness.
    """
    data_nodes = {node.key for node in nodes if node.kind == "data"}
    producers: dict[str, list[str]] = {}
    for source, target in edges:
        if target in data_nodes:
            producers.setdefault(target, []).append(source)
    for source, consumer in list(edges):
        for producer in producers.get(source, ()):
            if (producer, consumer) in edges:
                stale = edges.pop((producer, consumer))
                edges[source, consumer] = edges[source, consumer] or stale


# --- text formats ---------------------------------------------------------------------------


def _css_class(state: str) -> str:
    return state.replace(" ", "_")


def _mermaid_text(text: str) -> str:
    # Mermaid labels in quotes may not hold quotes; #quot; is its escape.
    return text.replace('"', "#quot;")


def to_mermaid(graph: Graph) -> str:
    """Render `graph` as a Mermaid flowchart (stale edges dashed, classes per state)."""
    lines = ["flowchart LR"]
    in_cluster = {key for cluster in graph.clusters for key in cluster.nodes}

    def node_line(node: Node, indent: str) -> str:
        text = _mermaid_text(f"{node.label}<br/>{node.note}" if node.note else node.label)
        shape = {"run": ('["', '"]'), "tasks": ('[["', '"]]'), "data": ('[("', '")]')}[node.kind]
        return f"{indent}{node.key}{shape[0]}{text}{shape[1]}"

    lines += [node_line(node, "  ") for node in graph.nodes if node.key not in in_cluster]
    by_key = {node.key: node for node in graph.nodes}
    for number, cluster in enumerate(graph.clusters):
        lines.append(f'  subgraph c{number} ["{_mermaid_text(cluster.label)}"]')
        lines += [node_line(by_key[key], "    ") for key in cluster.nodes]
        lines.append("  end")
    lines += [
        f"  {edge.source} {'-.->' if edge.stale else '-->'} {edge.target}" for edge in graph.edges
    ]
    used = dict.fromkeys(node.state for node in graph.nodes)
    for state in used:
        stroke, fill = STATE_COLORS[state]
        lines.append(f"  classDef {_css_class(state)} fill:{fill},stroke:{stroke},color:#222;")
    for state in used:
        members = ",".join(node.key for node in graph.nodes if node.state == state)
        lines.append(f"  class {members} {_css_class(state)};")
    return "\n".join(lines) + "\n"


def to_dot(graph: Graph) -> str:
    """Render `graph` as a Graphviz digraph (clusters for task lists, stale edges dashed)."""

    def quoted(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)

    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
    ]
    in_cluster = {key for cluster in graph.clusters for key in cluster.nodes}

    def node_line(node: Node, indent: str) -> str:
        stroke, fill = STATE_COLORS[node.state]
        shape = {"run": "box", "tasks": "box3d", "data": "cylinder"}[node.kind]
        label = f"{node.label}\n{node.note}" if node.note else node.label
        return (
            f"{indent}{node.key} [label={quoted(label)}, shape={shape}, color={quoted(stroke)}, "
            f"fillcolor={quoted(fill)}];"
        )

    lines += [node_line(node, "  ") for node in graph.nodes if node.key not in in_cluster]
    by_key = {node.key: node for node in graph.nodes}
    for number, cluster in enumerate(graph.clusters):
        lines += [f"  subgraph cluster_{number} {{", f"    label={quoted(cluster.label)};"]
        lines += [node_line(by_key[key], "    ") for key in cluster.nodes]
        lines.append("  }")
    for edge in graph.edges:
        style = f' [style=dashed, color="{STATE_COLORS["stale"][0]}"]' if edge.stale else ""
        lines.append(f"  {edge.source} -> {edge.target}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"
