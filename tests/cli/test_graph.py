"""`flexlock graph`: the example pipeline's lineage in mermaid, dot, and in a real browser."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from flexlock.cli._graph import STATE_COLORS
from tests._helpers import require_service
from tests.cli._inspect_helpers import flexlock
from tests.cli.test_status import TRAIN, build_pipeline, run_stage

pytestmark = pytest.mark.slow  # each module runs the example pipeline


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The finished example pipeline, then prepare re-run with another noise level."""
    work = build_pipeline(tmp_path_factory.mktemp("graph") / "pipeline")
    run_stage(
        work, "prepare.py", "--config", "conf/pipeline.yml", "--experiment", "prepare",
        "-o", "noise", "0.4",
    )  # fmt: skip
    return work


@pytest.fixture
def project(changed: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(changed)
    return changed


def graph_json(capsys: Any, *argv: str) -> dict[str, Any]:
    code, out, _ = flexlock(capsys, "graph", "results", "--format", "json", *argv)
    assert 0 == code  # the graph is drawn whatever the runs' states
    result: dict[str, Any] = json.loads(out)
    return result


def test_a_task_list_collapses_into_one_node_counting_its_runs(project: Path, capsys: Any) -> None:
    graph = graph_json(capsys)
    nodes = {node["label"]: node for node in graph["nodes"]}
    assert ["results/prepare", "results/train/", "results/evaluate"] == list(nodes)
    train = nodes["results/train/"]
    assert ("tasks", "stale", {"stale": 4}, ["optim.lr"]) == (
        train["kind"],
        train["state"],
        train["counts"],
        train["varying"],
    )
    assert sorted(TRAIN) == sorted(train["runs"])
    assert ("up to date", "stale") == (
        nodes["results/prepare"]["state"],
        nodes["results/evaluate"]["state"],
    )
    assert [
        {"source": "n0", "target": "n1", "stale": True},
        {"source": "n1", "target": "n2", "stale": True},
    ] == graph["edges"]


def test_expanded_runs_sit_in_one_box_and_data_inputs_join_producer_and_consumers(
    project: Path, capsys: Any
) -> None:
    graph = graph_json(capsys, "--collapse", "0", "--data")
    labels = {node["key"]: node["label"] for node in graph["nodes"]}
    kinds = {node["label"]: (node["kind"], node["state"]) for node in graph["nodes"]}
    assert ("data", "changed") == kinds["results/prepare/data.csv"]
    assert dict.fromkeys(TRAIN, ("run", "stale")) == {run: kinds[run] for run in TRAIN}
    assert [("results/train/", sorted(TRAIN))] == [
        (cluster["label"], sorted(labels[key] for key in cluster["nodes"]))
        for cluster in graph["clusters"]
    ]
    edges = {(labels[e["source"]], labels[e["target"]]): e["stale"] for e in graph["edges"]}
    # prepare -> data.csv -> each train run (no direct prepare -> train edge beside it)
    assert edges[("results/prepare", "results/prepare/data.csv")] is False
    assert all(edges[("results/prepare/data.csv", run)] for run in TRAIN)
    assert not any(("results/prepare", run) in edges for run in TRAIN)
    assert all(edges[(run, "results/evaluate")] for run in TRAIN)


def test_mermaid_and_dot_mark_the_stale_nodes_and_edges(project: Path, capsys: Any) -> None:
    code, mermaid, _ = flexlock(capsys, "graph", "results")
    assert 0 == code
    assert mermaid.startswith("flowchart LR\n")
    assert '  n1[["results/train/<br/>4 runs: 4 stale"]]' in mermaid
    for line in ("n0 -.-> n1", "n1 -.-> n2", "class n1,n2 stale;", "class n0 up_to_date;"):
        assert f"  {line}\n" in mermaid
    _, dot, _ = flexlock(capsys, "graph", "results", "-f", "dot", "--collapse", "0")
    assert dot.startswith("digraph lineage {")
    assert 'subgraph cluster_0 {\n    label="results/train/";' in dot
    stroke, fill = STATE_COLORS["stale"]
    assert dot.count(f'color="{stroke}", fillcolor="{fill}"') == 5  # 4 train runs, evaluate


def test_the_format_follows_the_output_suffix(project: Path, capsys: Any, tmp_path: Path) -> None:
    for name, start in (("g.svg", "<svg "), ("g.dot", "digraph"), ("g.mmd", "flowchart")):
        code, _, err = flexlock(capsys, "graph", "results", "-o", str(tmp_path / name))
        assert (0, "(3 nodes)") == (code, err.strip()[-9:])
        assert (tmp_path / name).read_text().startswith(start)
    code, _, err = flexlock(capsys, "graph", "results", "-o", str(tmp_path / "g.png"))
    assert 2 == code
    assert "cannot tell the format from '.png'; pass --format" in err


# --- in a real browser ----------------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    require_service(found is not None, "chromium not installed (apt-get install chromium)")
    assert found is not None
    return found


def _browse(page: Path, tmp_path: Path, *flags: str, fragment: str = "") -> str:
    """Open `page` in headless Chromium (scripts run); return stdout (the DOM, --dump-dom)."""
    result = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",  # as root on CI; the page is our own local file
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=5000",
            *flags,
            page.resolve().as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == result.returncode, result.stderr[-2000:]
    return result.stdout


class _Dom(HTMLParser):
    """The parts of the rendered page the tests look at."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[dict[str, str | None]] = []
        self.body: dict[str, str | None] = {}
        self.open_details: list[str | None] = []
        self.node_count = ""
        self._in_count = False
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if tag == "g" and "node" in classes:
            self.nodes.append(values)
        elif tag == "body":
            self.body = values
        elif tag == "details" and "open" in values:
            self.open_details.append(values.get("id"))
        elif tag == "span" and values.get("id") == "node-count":
            self._in_count = True
        for key in ("src", "href"):
            if values.get(key) and "://" in (values.get(key) or ""):
                self.external.append(values[key] or "")

    def handle_data(self, data: str) -> None:
        if self._in_count:
            self.node_count += data

    def handle_endtag(self, tag: str) -> None:
        self._in_count = self._in_count and tag != "span"


def _pixels(png: bytes) -> set[tuple[int, ...]]:
    """Decode an 8-bit RGB(A) non-interlaced PNG (what Chromium writes) into its colours."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    idat = b""
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        body = png[offset + 8 : offset + 8 + length]
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
        offset += 12 + length
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, interlace, color_type in (2, 6)) == (8, 0, True)
    channels = 3 if color_type == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    previous = bytearray(stride)
    colours: set[tuple[int, ...]] = set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (
                    line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)
                ) & 255
        colours.update(tuple(line[i : i + 3]) for i in range(0, stride, channels))
        previous = line
    return colours


def _rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


@pytest.fixture
def page(project: Path, capsys: Any, tmp_path: Path) -> Path:
    out = tmp_path / "lineage.html"
    code, _, _ = flexlock(capsys, "graph", "results", "-o", str(out))
    assert 0 == code
    return out


def test_the_html_page_renders_offline_with_every_node_and_the_stale_ones_marked(
    page: Path, tmp_path: Path
) -> None:
    dom = _Dom()
    dom.feed(_browse(page, tmp_path, "--dump-dom"))
    assert "yes" == dom.body.get("data-rendered")  # the page's script ran
    assert [] == dom.external  # nothing loaded from the network
    assert "3" == dom.node_count.strip()  # counted by the page itself, in the browser
    assert [
        ("results/prepare", "up to date"),
        ("results/train/", "stale"),
        ("results/evaluate", "stale"),
    ] == [(node["data-label"], node["data-state"]) for node in dom.nodes]
    assert [] == dom.open_details


def test_a_task_list_node_expands_into_its_runs(page: Path, tmp_path: Path) -> None:
    text = _browse(page, tmp_path, "--dump-dom", fragment="#n1")
    dom = _Dom()
    dom.feed(text)
    assert ["runs-n1"] == dom.open_details
    runs = text[text.index('id="runs-n1"') : text.index("</details>", text.index('id="runs-n1"'))]
    for run in TRAIN:
        assert f"<code>{run}</code>" in runs
    assert runs.count(">stale</td>") == 4


def test_a_screenshot_shows_up_to_date_and_stale_nodes(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    _browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1000,500", "--hide-scrollbars")
    colours = _pixels(shot.read_bytes())
    assert len(colours) > 1  # not blank
    assert _rgb(STATE_COLORS["stale"][1]) in colours  # the stale nodes' fill
    assert _rgb(STATE_COLORS["up to date"][1]) in colours  # prepare's
