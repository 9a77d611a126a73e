"""The lineage graph as SVG, and as one self-contained HTML page (`flexlock graph -f svg|html`).

Drawn here rather than by a renderer, so that the page opens in any browser without
network access and needs nothing installed: mermaid.js would have to be vendored
(about 3 MB of JavaScript, for one picture), Graphviz is a system package that HPC nodes
and CI images often lack. A project's lineage is a small, shallow DAG (a few stages, task
lists collapsed into one node each), for which a layered layout is enough: a node's
layer is its longest path from a source, the order within a layer is improved by a few
barycenter sweeps (the Sugiyama heuristic), edges are curves between layers. Text widths
are estimated from a monospace font, so no font metrics are needed.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping

import attrs

from flexlock.cli._cmd_status import describe_reasons, shown_path
from flexlock.cli._graph import STATE_COLORS, Graph, Node

__all__ = ["Layout", "layout", "to_html", "to_svg"]

_FONT = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace"
_LABEL_PX, _NOTE_PX = 12.0, 11.0  # font sizes
_CHAR = 0.6  # a monospace glyph's advance, in ems
_NOTE_CHARS = 46  # notes longer than this are cut (the tooltip has them whole)
_PAD_X, _MIN_WIDTH = 12.0, 120.0
_RUN_HEIGHT, _TASKS_HEIGHT = 42.0, 54.0
_LAYER_GAP, _NODE_GAP, _MARGIN = 72.0, 18.0, 16.0
_SWEEPS = 4
_CLUSTER_HEAD = 20.0  # a task list's box reaches this far above its first run


@attrs.frozen
class Box:
    """Where a node is drawn: top-left corner and size."""

    x: float
    y: float
    width: float
    height: float


@attrs.frozen
class Layout:
    """Every node's box and the size of the picture."""

    boxes: Mapping[str, Box]
    width: float
    height: float


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _node_width(node: Node) -> float:
    label = len(node.label) * _LABEL_PX * _CHAR
    note = len(_cut(node.note, _NOTE_CHARS)) * _NOTE_PX * _CHAR
    return max(_MIN_WIDTH, label + 2 * _PAD_X, note + 2 * _PAD_X)


def _layers(graph: Graph) -> list[list[str]]:
    """Put each node in the layer of its longest path from a source (nodes come upstream first)."""
    upstream: dict[str, list[str]] = {node.key: [] for node in graph.nodes}
    for edge in graph.edges:
        upstream[edge.target].append(edge.source)
    rank: dict[str, int] = {}

    def rank_of(key: str, path: frozenset[str]) -> int:
        if key not in rank:
            sources = [source for source in upstream[key] if source not in path]  # no cycles
            rank[key] = 1 + max((rank_of(s, path | {key}) for s in sources), default=-1)
        return rank[key]

    for node in graph.nodes:
        rank_of(node.key, frozenset())
    layers: list[list[str]] = [[] for _ in range(max(rank.values(), default=-1) + 1)]
    for node in graph.nodes:
        layers[rank[node.key]].append(node.key)
    return layers


def _order(graph: Graph, layers: list[list[str]]) -> None:
    """Reorder each layer by the mean position of its neighbours (sweeps down, then up)."""
    neighbours: dict[str, dict[str, list[str]]] = {
        "up": {node.key: [] for node in graph.nodes},
        "down": {node.key: [] for node in graph.nodes},
    }
    for edge in graph.edges:
        neighbours["up"][edge.target].append(edge.source)
        neighbours["down"][edge.source].append(edge.target)
    cluster_of = {key: number for number, c in enumerate(graph.clusters) for key in c.nodes}
    for sweep in range(_SWEEPS):
        direction = "up" if sweep % 2 == 0 else "down"
        index = {key: i for layer in layers for i, key in enumerate(layer)}
        for layer in layers if direction == "up" else reversed(layers):
            centre: dict[str, float] = {}
            for key in layer:
                seen = [index[other] for other in neighbours[direction][key]]
                centre[key] = sum(seen) / len(seen) if seen else float(index[key])
            # The runs of one task list stay together, in their order.
            by_cluster: dict[int, list[float]] = {}
            for key in layer:
                if key in cluster_of:
                    by_cluster.setdefault(cluster_of[key], []).append(centre[key])
            placed = {
                key: (
                    sum(by_cluster[cluster_of[key]]) / len(by_cluster[cluster_of[key]])
                    if key in cluster_of
                    else centre[key],
                    i,
                )
                for i, key in enumerate(layer)
            }
            layer.sort(key=placed.__getitem__)
            index.update((key, i) for i, key in enumerate(layer))


def layout(graph: Graph) -> Layout:
    """Place the nodes of `graph` left to right, upstream first."""
    layers = _layers(graph)
    _order(graph, layers)
    nodes = {node.key: node for node in graph.nodes}
    sizes = {
        key: (_node_width(node), _TASKS_HEIGHT if node.kind == "tasks" else _RUN_HEIGHT)
        for key, node in nodes.items()
    }
    heights = [
        sum(sizes[key][1] for key in layer) + _NODE_GAP * (len(layer) - 1) for layer in layers
    ]
    tallest = max(heights, default=0.0)
    top = _MARGIN + (_CLUSTER_HEAD if graph.clusters else 0.0)  # room for a box's label
    boxes = {}
    x = _MARGIN
    for layer, height in zip(layers, heights, strict=True):
        width = max(sizes[key][0] for key in layer)
        y = top + (tallest - height) / 2
        for key in layer:
            node_width, node_height = sizes[key]
            boxes[key] = Box(x + (width - node_width) / 2, y, node_width, node_height)
            y += node_height + _NODE_GAP
        x += width + _LAYER_GAP
    total_width = x - _LAYER_GAP + _MARGIN if layers else 2 * _MARGIN
    return Layout(boxes, total_width, top + tallest + _MARGIN + (8.0 if graph.clusters else 0.0))


# --- SVG ------------------------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _tooltip(node: Node) -> str:
    if node.kind == "run":
        state = node.members[0]
        lines = [node.label, state.state]
        lines += [f"  {reason}" for reason in state.reasons]
        if state.state in ("failed", "running", "invalid"):
            lines.append(f"  {describe_reasons(state)}")
        return "\n".join(lines)
    if node.kind == "tasks":
        lines = [f"{node.label}  (task list)", node.note]
        if node.varying:
            lines.append(f"varying: {', '.join(node.varying)}")
        lines.append("click to list its runs")
        return "\n".join(lines)
    return f"{node.label}\ndata input" + (
        " (changed since some run read it)" if node.state == "changed" else ""
    )


def _svg_node(node: Node, box: Box) -> list[str]:
    stroke, fill = STATE_COLORS[node.state]
    x, y, w, h = box.x, box.y, box.width, box.height
    out = [
        f'<g class="node {node.kind}" id="{node.key}" data-kind="{node.kind}" '
        f'data-state="{_e(node.state)}" data-label="{_e(node.label)}"'
        + (' tabindex="0" role="button"' if node.kind == "tasks" else "")
        + ">",
        f"<title>{_e(_tooltip(node))}</title>",
    ]
    if node.kind == "tasks":  # a stack of cards: many runs behind this one
        for offset in (6.0, 3.0):
            out.append(
                f'<rect x="{x + offset:.1f}" y="{y - offset:.1f}" width="{w:.1f}" height="{h:.1f}" '
                f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1" opacity="0.6"/>'
            )
    radius = 14 if node.kind == "data" else 6
    out.append(
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{radius}" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="1.6"/>'
    )
    out.append(
        f'<text x="{x + _PAD_X:.1f}" y="{y + 17:.1f}" font-size="{_LABEL_PX:g}" '
        f'font-weight="bold" fill="#1b1b1b">{_e(node.label)}</text>'
    )
    if node.note:
        out.append(
            f'<text x="{x + _PAD_X:.1f}" y="{y + 33:.1f}" font-size="{_NOTE_PX:g}" '
            f'fill="#333">{_e(_cut(node.note, _NOTE_CHARS))}</text>'
        )
    if node.kind == "tasks":  # one segment per state, as wide as its share of the runs
        total = sum(node.counts.values()) or 1
        left, bar_width = x + _PAD_X, w - 2 * _PAD_X
        for state, count in node.counts.items():
            width = bar_width * count / total
            out.append(
                f'<rect class="bar" x="{left:.1f}" y="{y + h - 12:.1f}" width="{width:.1f}" '
                f'height="6" fill="{STATE_COLORS[state][0]}">'
                f"<title>{count} {_e(state)}</title></rect>"
            )
            left += width
    out.append("</g>")
    return out


def to_svg(graph: Graph, title: str = "lineage") -> str:
    """Render `graph` as a standalone SVG document."""
    placed = layout(graph)
    boxes = placed.boxes
    stale_stroke = STATE_COLORS["stale"][0]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" role="img" '
        f'aria-label="{_e(title)}" width="{placed.width:.0f}" height="{placed.height:.0f}" '
        f'viewBox="0 0 {placed.width:.0f} {placed.height:.0f}" font-family="{_FONT}">',
        f"<title>{_e(title)}</title>",
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#666"/>'
        "</marker>",
        '<marker id="arrow-stale" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" '
        f'fill="{stale_stroke}"/></marker>',
        "</defs>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        '<g class="clusters">',
    ]
    for cluster in graph.clusters:
        members = [boxes[key] for key in cluster.nodes]
        if len({box.x for box in members}) != 1:
            continue  # its runs sit in different layers: no box would hold only them
        left = min(b.x for b in members) - 8
        top = min(b.y for b in members) - _CLUSTER_HEAD
        right = max(b.x + b.width for b in members) + 8
        bottom = max(b.y + b.height for b in members) + 8
        out.append(
            f'<g class="cluster"><rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" '
            f'height="{bottom - top:.1f}" rx="8" fill="#f7f7f9" stroke="#b0b4bb" '
            f'stroke-dasharray="4 3"/><text x="{left + 8:.1f}" y="{top + 13:.1f}" '
            f'font-size="11" fill="#555">{_e(cluster.label)}</text></g>'
        )
    out += ["</g>", '<g class="edges">']
    for edge in graph.edges:
        a, b = boxes[edge.source], boxes[edge.target]
        x1, y1 = a.x + a.width, a.y + a.height / 2
        x2, y2 = b.x, b.y + b.height / 2
        bend = max((x2 - x1) / 2, 24.0)
        style = (
            f'stroke="{stale_stroke}" stroke-dasharray="6 4" marker-end="url(#arrow-stale)"'
            if edge.stale
            else 'stroke="#777" marker-end="url(#arrow)"'
        )
        out.append(
            f'<path class="edge{" stale" if edge.stale else ""}" data-source="{edge.source}" '
            f'data-target="{edge.target}" d="M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} '
            f'{x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" fill="none" stroke-width="1.4" {style}/>'
        )
    out += ["</g>", '<g class="nodes">']
    for node in graph.nodes:
        out += _svg_node(node, boxes[node.key])
    out += ["</g>", "</svg>"]
    return "\n".join(out) + "\n"


# --- HTML -----------------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1b1b1b; }
h1 { font-size: 1.3em; margin: 0 0 .2em; } h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
.summary { margin: 0 0 1em; color: #333; }
.legend span { display: inline-block; margin-right: 1em; }
.legend i { display: inline-block; width: .9em; height: .9em; border: 1.5px solid;
  border-radius: 3px; vertical-align: -.1em; margin-right: .3em; }
.graph { overflow: auto; border: 1px solid #ddd; border-radius: 6px; }
.node.tasks { cursor: pointer; }
.node.tasks:hover > rect:not(.bar), .node.tasks:focus > rect:not(.bar) { stroke-width: 3; }
table { border-collapse: collapse; margin: .4em 0 1em; }
td, th { text-align: left; padding: .15em .8em .15em 0; vertical-align: top; }
th { font-weight: 600; border-bottom: 1px solid #ccc; }
td.state { white-space: nowrap; font-weight: 600; }
code { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: .95em; }
details { margin: .3em 0; } summary { cursor: pointer; }
details.highlight > summary { background: #fff3b0; }
"""

# Clicking a task list node opens its runs below the picture; `page.html#n3` opens node n3.
_SCRIPT = """
(function () {
  function open(key, toggle) {
    var details = document.getElementById("runs-" + key);
    if (!details) return;
    details.open = toggle ? !details.open : true;
    document.querySelectorAll("details.highlight").forEach(function (d) {
      d.classList.remove("highlight");
    });
    details.classList.add("highlight");
    details.scrollIntoView({block: "nearest"});
  }
  document.querySelectorAll(".node.tasks").forEach(function (node) {
    node.addEventListener("click", function () { open(node.id, true); });
    node.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        open(node.id, true);
        event.preventDefault();
      }
    });
  });
  if (location.hash.length > 1) open(location.hash.slice(1), false);
  var count = document.querySelectorAll("svg.lineage .node").length;
  document.getElementById("node-count").textContent = String(count);
  document.body.setAttribute("data-rendered", "yes");
})();
"""


def _state_cell(state: str) -> str:
    stroke, _ = STATE_COLORS[state]
    return f'<td class="state" style="color:{stroke}">{_e(state)}</td>'


def _run_rows(node: Node) -> list[str]:
    from flexlock.cli._cmd_ls import _cell
    from flexlock.core import lookup

    rows = []
    for member in node.members:
        values = "".join(
            f"<td><code>{_e(_cell(lookup(member.summary.config, key)))}</code></td>"
            for key in node.varying
        )
        rows.append(
            f"<tr>{_state_cell(member.state)}<td><code>"
            f"{_e(shown_path(member.summary.run_dir))}</code></td>{values}"
            f"<td>{_e(describe_reasons(member))}</td></tr>"
        )
    return rows


def to_html(graph: Graph, title: str) -> str:
    """Render `graph` as one HTML page: the picture, task lists to expand, runs to re-run."""
    counts = graph.counts()
    total = sum(counts.values())
    summary = f"{total} run{'s' if total != 1 else ''}: " + ", ".join(
        f"{count} {state}" for state, count in counts.items()
    )
    legend = "".join(
        f'<span><i style="border-color:{stroke};background:{fill}"></i>{_e(state)}</span>'
        for state, (stroke, fill) in STATE_COLORS.items()
        if state != "changed"
    )
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head>",
        '<body data-rendered="no">',
        f"<h1>{_e(title)}</h1>",
        f'<p class="summary">{_e(summary)} · <span id="node-count">{len(graph.nodes)}</span> '
        "nodes · a stack of cards is a task list: click it to list its runs</p>",
        f'<p class="legend">{legend}<span>dashed arrow: the consumer is stale because of it'
        "</span></p>",
        f'<div class="graph">{to_svg(graph, title)}</div>',
    ]
    task_lists = [node for node in graph.nodes if node.kind == "tasks"]
    if task_lists:
        out.append('<h2>Task lists</h2><div id="task-lists">')
        for node in task_lists:
            heads = "".join(f"<th>{_e(key)}</th>" for key in node.varying)
            out += [
                f'<details id="runs-{node.key}" data-node="{node.key}">',
                f"<summary><code>{_e(node.label)}</code>: {_e(node.note)}</summary>",
                f"<table><tr><th>state</th><th>run</th>{heads}<th>why</th></tr>",
                *_run_rows(node),
                "</table></details>",
            ]
        out.append("</div>")
    todo = [
        member
        for node in graph.nodes
        for member in node.members
        if member.state in ("stale", "failed", "invalid")
    ]
    out.append("<h2>To re-run, upstream first</h2>")
    if todo:
        out.append('<table id="todo"><tr><th>state</th><th>run</th><th>why</th></tr>')
        out += [
            f"<tr>{_state_cell(member.state)}<td><code>{_e(shown_path(member.summary.run_dir))}"
            f"</code></td><td>{_e(describe_reasons(member))}</td></tr>"
            for member in todo  # nodes are upstream first, and so are their runs
        ]
        out.append("</table>")
    else:
        out.append("<p>Nothing: every run is up to date.</p>")
    out += [
        f'<script type="application/json" id="graph-data">{_json_for_script(graph)}</script>',
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(out) + "\n"


def _json_for_script(graph: Graph) -> str:
    """The graph as JSON inside a <script> element (`</` escaped so it cannot end it)."""
    raw = {
        "nodes": [
            {"key": n.key, "kind": n.kind, "label": n.label, "state": n.state, "note": n.note}
            for n in graph.nodes
        ],
        "edges": [[e.source, e.target, e.stale] for e in graph.edges],
    }
    return json.dumps(raw, ensure_ascii=False).replace("</", "<\\/")
