"""What N runs' snapshot refs cost git: status, for-each-ref, gc and fetch (issue 21 item 5).

    python benchmarks/bench_refs.py              # N = 100,000 snapshot commits
    python benchmarks/bench_refs.py --n 10000

One repository (1,000 committed files) is copied four ways, each then holding N distinct
snapshot commits (written by `git fast-import`, as distinct as real runs' snapshots):

- none: no snapshot at all (the baseline);
- loose per-run refs: `refs/flexlock/runs/<id>` per run, as flexlock 0.11 left them;
- packed per-run refs: the same after `git pack-refs --all`;
- one ref per commit of a sweep: N runs of one code state pin one commit, so the repository
  holds one snapshot and one ref (what flexlock writes now for a task list);
- after `flexlock gc`: the refs of the N runs whose sheets are gone dropped, the
  snapshots pruned by `git gc`.

Timed on each (median of --repeat, wall): `git status`, `git for-each-ref` (all refs), `git
gc` (the first, which packs; then `git gc` again), and `git fetch` of the repository from a
clone made before the snapshots existed (the clone's refspec fetches branches only; the
cost is the ref advertisement and negotiation). Results go to benchmarks/results/refs.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "refs.md"
_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@x",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@x",
}


def git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(
        ["git", *args], cwd=repo, env=_ENV, input=stdin, capture_output=True, check=True
    ).stdout


def timed(repo: Path, *args: str) -> float:
    start = time.perf_counter()
    git(repo, *args)
    return time.perf_counter() - start


def base_repo(root: Path) -> Path:
    repo = root / "base"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for index in range(1000):
        path = repo / f"pkg{index // 100}" / f"m{index}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"V = {index}\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", "base")
    git(repo, "gc", "-q")
    return repo


def add_snapshots(repo: Path, n: int, ref: str) -> None:
    """N snapshot commits on top of HEAD, each changing one file, each under `ref % i`."""
    head = git(repo, "rev-parse", "HEAD").decode().strip()
    stream = []
    for index in range(n):
        content = f"V = {index} # run {index}\n".encode()
        name = ref % index
        stream.append(
            b"commit %s\ncommitter flexlock <flexlock@localhost> 0 +0000\ndata 18\n"
            b"flexlock snapshot\nfrom %s\nM 100644 inline pkg0/m0.py\ndata %d\n%s\n"
            % (name.encode(), head.encode(), len(content), content)
        )
    git(repo, "fast-import", "--quiet", stdin=b"".join(stream))


def measure(repo: Path, clone: Path, repeat: int) -> dict[str, float]:
    figures: dict[str, list[float]] = {"status": [], "for-each-ref": [], "fetch": []}
    for _ in range(repeat):
        figures["status"].append(timed(repo, "status", "--porcelain"))
        figures["for-each-ref"].append(timed(repo, "for-each-ref"))
        figures["fetch"].append(timed(clone, "fetch", "-q", str(repo)))
    result = {key: statistics.median(values) for key, values in figures.items()}
    result["gc (first)"] = timed(repo, "gc", "-q")
    result["gc (again)"] = timed(repo, "gc", "-q")
    result["refs"] = float(git(repo, "for-each-ref").count(b"\n"))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.n
    with tempfile.TemporaryDirectory(prefix="bench-refs-") as temp:
        root = Path(temp)
        base = base_repo(root)
        variants: dict[str, Path] = {}
        for name in ("none", "loose per-run refs", "packed per-run refs", "sweep", "gc"):
            copy = root / name.replace(" ", "-")
            shutil.copytree(base, copy, symlinks=True)
            variants[name] = copy
        clone = root / "clone"
        git(root, "clone", "-q", str(base), str(clone))
        started = time.perf_counter()
        add_snapshots(variants["loose per-run refs"], n, "refs/flexlock/runs/sha256-%064x")
        made = time.perf_counter() - started
        add_snapshots(variants["packed per-run refs"], n, "refs/flexlock/runs/sha256-%064x")
        git(variants["packed per-run refs"], "pack-refs", "--all")
        add_snapshots(variants["sweep"], 1, "refs/flexlock/snapshots/%040x")
        gc_repo = variants["gc"]
        add_snapshots(gc_repo, n, "refs/flexlock/runs/sha256-%064x")
        # What `flexlock gc --yes` does when no sheet names them: one update-ref transaction.
        names = git(
            gc_repo, "for-each-ref", "--format=delete %(refname)", "refs/flexlock/"
        ).decode()
        started = time.perf_counter()
        git(gc_repo, "update-ref", "--stdin", stdin=names.encode())
        dropped = time.perf_counter() - started
        git(gc_repo, "gc", "-q", "--prune=now")
        results = {name: measure(repo, clone, args.repeat) for name, repo in variants.items()}
    columns = ["refs", "status", "for-each-ref", "fetch", "gc (first)", "gc (again)"]
    base_row = results["none"]
    lines = [
        "# Snapshot refs at scale",
        "",
        f"`python benchmarks/bench_refs.py --n {n}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{git(Path.cwd(), 'version').decode().strip()}, {os.cpu_count()} CPUs shared, "
        f"load average {os.getloadavg()[0]:.1f}). A 1,000-file repository; each variant holds "
        f"{n} distinct snapshot commits (the sweep variant: one, as {n} runs of one code "
        "state). Wall seconds, median of "
        f"{args.repeat} (gc once each); ratio to the repository without snapshots in brackets.",
        "",
        "| variant | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, row in results.items():
        cells = [f"{row['refs']:.0f}"]
        for column in columns[1:]:
            ratio = row[column] / base_row[column] if base_row[column] else 0.0
            cells.append(f"{row[column]:.3f} ({ratio:.1f}x)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"- writing {n} loose refs (fast-import, one transaction): {made:.1f} s; "
        f"dropping them in one `update-ref --stdin` transaction: {dropped:.1f} s",
        "- flexlock now pins one ref per distinct snapshot commit, once per process: a task "
        "list over one code state adds one ref whatever its length (`bench_serial.py` counts "
        "them); the per-run rows are what older versions left behind and what `flexlock gc` "
        "turns into per-commit refs or drops.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
