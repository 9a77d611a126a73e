"""Benchmark `flexlock status` on a project of many runs against `flexlock ls` of the same runs.

Builds a real project in a git repository: one `prepare` run writing a data file, N
`train` runs of a task list (real `runlock()` sheets: code, the data file's hash, the
prepare run as upstream, identity inputs kept beside each sheet), one `evaluate` run
consuming every train run. Then times, interleaved and repeated (median of --repeat),
each in a new interpreter as a user runs it, output piped:

- baseline  `flexlock ls DIR` (walk + header summaries from the cache)
- `flexlock status DIR` with everything unchanged (the usual question: what is stale?)
- `flexlock status DIR` after the code changed (every run stale; the reasons name the file)

and counts git processes of one `status` run (a `git` wrapper on PATH logs each call):
one capture per repository, not one per run.

    python benchmarks/bench_status.py              # 1,000 runs, 3 repetitions
    python benchmarks/bench_status.py --runs 200 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "status.md"
_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@b",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@b",
}

_BUILD = """
import sys
from pathlib import Path
from flexlock.core import runlock

runs = int(sys.argv[1])
Path("results/prepare").mkdir(parents=True)
with runlock({"n": 400, "save_dir": "results/prepare"}, repos=["."]):
    Path("results/prepare/data.csv").write_text("x,y\\n" + "0.5,1.0\\n" * 400)
train = []
for index in range(runs):
    save_dir = f"results/train/lr={index}"
    Path(save_dir).mkdir(parents=True)
    config = {"lr": index, "save_dir": save_dir}
    with runlock(config, repos=["."], data=["results/prepare/data.csv"], prevs=["results/prepare"]):
        Path(save_dir, "model.json").write_text("{}")
    train.append(save_dir)
Path("results/evaluate").mkdir()
with runlock({"save_dir": "results/evaluate"}, repos=["."], prevs=train):
    Path("results/evaluate/report.json").write_text("{}")
"""


def build(root: Path, runs: int) -> None:
    """Create the project: a git repo with a script, and its prepare/train/evaluate runs."""
    root.mkdir()
    (root / "train.py").write_text("print('train')\n")
    (root / ".gitignore").write_text("results/\n")
    env = {**os.environ, **_GIT_ENV}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    subprocess.run(
        [sys.executable, "-c", _BUILD, str(runs)], cwd=root, env=env, check=True, timeout=3600
    )


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run `argv` in a new process; return (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def git_calls(root: Path, work: Path) -> int:
    """Count the git processes one `flexlock status` starts."""
    real = shutil.which("git")
    assert real is not None
    bin_dir, log = work / "bin", work / "git.log"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "git").write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    (bin_dir / "git").chmod(0o755)
    log.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    flexlock = [sys.executable, "-m", "flexlock.cli._main"]
    subprocess.run(
        [*flexlock, "status", "results"], cwd=root, env=env, capture_output=True, check=False
    )
    return len(log.read_text().splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    flexlock = [sys.executable, "-m", "flexlock.cli._main"]
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        work = Path(tmp)
        root = work / "project"
        started = time.perf_counter()
        build(root, args.runs)
        built = time.perf_counter() - started
        total = args.runs + 2
        variants = {
            "ls": [*flexlock, "ls", "results"],
            "status": [*flexlock, "status", "results"],
        }
        for argv in variants.values():  # warm the page cache and the summary/hash caches
            timed(argv, root)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name, argv in variants.items():
                samples[name].append(timed(argv, root))
        calls_unchanged = git_calls(root, work)
        (root / "train.py").write_text("print('train, tuned')\n")
        changed: list[tuple[float, float]] = []
        baseline_changed: list[tuple[float, float]] = []
        for _ in range(args.repeat):
            baseline_changed.append(timed(variants["ls"], root))
            changed.append(timed(variants["status"], root))
        calls_changed = git_calls(root, work)

    def median(values: list[tuple[float, float]], index: int) -> float:
        return statistics.median(value[index] for value in values)

    base_wall, base_cpu = median(samples["ls"], 0), median(samples["ls"], 1)
    rows = [
        ("`flexlock ls results` (baseline)", samples["ls"], base_wall, base_cpu),
        ("`flexlock status results`, nothing changed", samples["status"], base_wall, base_cpu),
        (
            "`flexlock status results`, code changed (every run stale)",
            changed,
            median(baseline_changed, 0),
            median(baseline_changed, 1),
        ),
    ]
    lines = [
        "# `flexlock status` against `flexlock ls`",
        "",
        f"Command: `python benchmarks/bench_status.py --runs {args.runs} --repeat {args.repeat}`",
        "",
        f"Project: {total} real runs (`runlock()` sheets in a git repo: prepare, a task list of "
        f"{args.runs} train runs each reading prepare's data file and consuming prepare, one "
        f"evaluate consuming every train run), built in {built:.0f} s. Each figure is the "
        "median of the repetitions, each command in a new interpreter, output piped; ratios "
        "are to `flexlock ls` of the same runs measured in the same round (interleaved). "
        "Caches warm (one untimed round first), as on a second look at a project.",
        "",
        "| command | wall s | CPU s | wall / ls | CPU / ls |",
        "|---|---|---|---|---|",
    ]
    for name, values, wall0, cpu0 in rows:
        wall, cpu = median(values, 0), median(values, 1)
        lines.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {wall / wall0:.2f} | {cpu / cpu0:.2f} |")
    lines += [
        "",
        f"git processes started by one `flexlock status` over the {total} runs: "
        f"{calls_unchanged} with nothing changed, {calls_changed} after the code changed "
        "(the one repository captured once, plus one `diff-tree` naming the changed files).",
        "",
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs (shared machine).",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
