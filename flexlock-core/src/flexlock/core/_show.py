"""Summarise a run and draw its lineage (`flexlock show`).

The lineage of a run is the tree of upstream sheets its sheet holds (each
upstream sheet with its own prevs, so the tree needs no other file). An
upstream run reached twice (a diamond: two stages reading one `prepare` run) is
one node in the graph formats (`dot`, `mermaid`) and is marked "(seen above)"
in the text tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import attrs

from flexlock.core._model import RunLock

__all__ = [
    "LineageNode",
    "lineage",
    "lineage_edges",
    "lineage_to_dot",
    "lineage_to_mermaid",
    "sheet_to_plain",
]


@attrs.frozen
class LineageNode:
    """One run in a lineage tree: the sheet and the upstream runs it consumed."""

    name: str  # how the downstream run referred to it (its prev path), or its save_dir
    lock: RunLock
    children: tuple[LineageNode, ...] = ()

    @property
    def label(self) -> str:
        """Return a short human label: save_dir (or name) and status."""
        return f"{self.lock.save_dir or self.name} [{self.lock.status}]"


# A lineage node's key: the name a downstream run gave the run, and its sheet object.
_NodeKey = tuple[str, int]


def lineage(lock: RunLock, name: str | None = None) -> LineageNode:
    """Build the lineage tree of `lock` from its embedded upstream sheets.

    An upstream sheet that several runs share (a loaded sheet holds each distinct
    upstream run once) gives one node object, built once: the cost grows with the
    distinct runs, not with the paths to them. Iterative, so a lineage deeper than
    Python's recursion limit is drawn too.
    """
    built: dict[_NodeKey, LineageNode] = {}
    expanded: set[_NodeKey] = set()
    root: _NodeKey = (name or lock.save_dir or lock.id, id(lock))
    stack: list[tuple[_NodeKey, RunLock]] = [(root, lock)]
    while stack:
        node, sheet = stack[-1]
        if node in built:
            stack.pop()
            continue
        upstream = [((key, id(prev.lock)), prev.lock) for key, prev in sheet.prevs.items()]
        if node not in expanded:
            expanded.add(node)
            stack += [item for item in upstream if item[0] not in built]
            continue
        stack.pop()
        built[node] = LineageNode(
            name=node[0], lock=sheet, children=tuple(built[item[0]] for item in upstream)
        )
    return built[root]


def lineage_edges(root: LineageNode) -> Iterator[tuple[LineageNode, LineageNode]]:
    """Yield each (upstream, downstream) edge once, upstream first, depth first."""
    seen: set[tuple[str, str]] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node.children:
            edge = (child.lock.id, node.lock.id)
            if edge in seen:
                continue
            seen.add(edge)
            yield child, node
            stack.append(child)


def _nodes(root: LineageNode) -> list[LineageNode]:
    """Return every distinct run of the tree (by id), root first."""
    found = {root.lock.id: root}
    for upstream, _ in lineage_edges(root):
        found.setdefault(upstream.lock.id, upstream)
    return list(found.values())


def _short(run_id: str) -> str:
    return run_id.partition(":")[2][:12] if ":" in run_id else run_id[:12]


def _node_name(run_id: str) -> str:
    """Return an identifier that dot and mermaid accept for a run id."""
    return "run_" + (run_id.partition(":")[2] or run_id)[:16].replace("-", "_")


def lineage_to_dot(root: LineageNode) -> str:
    """Render the lineage as a Graphviz digraph (edges point downstream)."""
    lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    colors = {"succeeded": "darkgreen", "failed": "red", "running": "orange"}
    for node in _nodes(root):
        label = f"{node.lock.save_dir or node.name}\n{node.lock.status} {_short(node.lock.id)}"
        color = colors.get(node.lock.status, "black")
        lines.append(
            f"  {_node_name(node.lock.id)} [label={json.dumps(label, ensure_ascii=False)}, "
            f"color={color}];"
        )
    for upstream, downstream in lineage_edges(root):
        lines.append(f"  {_node_name(upstream.lock.id)} -> {_node_name(downstream.lock.id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    # Mermaid labels in quotes may not contain quotes; #quot; is its escape.
    return text.replace('"', "#quot;")


def lineage_to_mermaid(root: LineageNode) -> str:
    """Render the lineage as a Mermaid flowchart (edges point downstream)."""
    lines = ["flowchart LR"]
    for node in _nodes(root):
        label = _mermaid_text(
            f"{node.lock.save_dir or node.name}<br/>{node.lock.status} {_short(node.lock.id)}"
        )
        lines.append(f'  {_node_name(node.lock.id)}["{label}"]')
    lines += [
        f"  {_node_name(upstream.lock.id)} --> {_node_name(downstream.lock.id)}"
        for upstream, downstream in lineage_edges(root)
    ]
    classes = {"succeeded": "ok", "failed": "failed", "running": "running"}
    lines += [
        "  classDef ok stroke:#2a2;",
        "  classDef failed stroke:#d22;",
        "  classDef running stroke:#e90;",
    ]
    lines += [
        f"  class {_node_name(node.lock.id)} {classes[node.lock.status]}"
        for node in _nodes(root)
        if node.lock.status in classes
    ]
    return "\n".join(lines) + "\n"


def sheet_to_plain(lock: RunLock) -> dict[str, Any]:
    """Return the sheet as plain data (what `show --format json` prints)."""
    from flexlock.core._lockfile import to_dict

    return to_dict(lock)
