"""Benchmark `flexlock ls` on a directory of many runs against `find -name run.lock`.

Builds N run directories (default 10,000), each with a realistic sheet (30-key
config, 150 recorded packages, one embedded upstream sheet) and a few data files
in sub-directories, then times, interleaved and repeated (median of --repeat):

- baseline  `find DIR -name run.lock` (walks everything, parses nothing)
- `flexlock ls DIR --no-cache` as a user runs it (new interpreter, table output, piped),
  parsing every sheet's header
- `flexlock ls DIR` with the summaries of unchanged sheets reused from the cache
- in-process: the walk alone (`find_runs`)
- a full strict `load()` of each sheet on a sample, as the per-run cost ls avoids

Figures are ratios to the baseline measured in the same run (the machine is shared
and noisy); wall and CPU time (user+sys of the child) are both reported. The page
cache is warm (every variant reads the tree once before timing).

    python benchmarks/bench_ls.py            # 10,000 runs, 3 repetitions (~2 min)
    python benchmarks/bench_ls.py --runs 2000 --repeat 5
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
from collections.abc import Callable
from pathlib import Path

from flexlock.core import EnvRecord, PrevRecord, RunLock, dumps, find_runs, load, read_summary

RESULTS = Path(__file__).parent / "results" / "inspect.md"


def build(root: Path, runs: int) -> None:
    """Write `runs` run directories under `root`, each with a sheet and some data files."""
    packages = {f"package-{index}": f"1.{index}.0" for index in range(150)}
    env = EnvRecord(
        "3.11.7",
        "cpython",
        "Linux-6.1",
        "node01",
        "me",
        "/home/me/project",
        argv=("train.py", "-o", "lr=0.1"),
        packages=packages,
    )
    upstream = RunLock(
        id="sha256:" + "b" * 64,
        status="succeeded",
        created="2026-11-26T11:00:00Z",
        config={"split": 0.2},
        env=env,
    )
    config = {f"key_{index}": index * 0.5 for index in range(28)}
    template = RunLock(
        id="sha256:" + "a" * 64,
        status="succeeded",
        created="2026-11-26T12:00:00Z",
        finished="2026-11-26T12:10:00Z",
        save_dir="results/sweep/RUN",
        config={**config, "model": {"name": "resnet", "depth": 18}},
        prevs={"results/prepare": PrevRecord(upstream.id, "results/prepare/run.lock", upstream)},
        env=env,
    )
    text = dumps(template)
    for index in range(runs):
        run_dir = root / f"group{index // 1000:02d}" / f"run{index:05d}"
        (run_dir / "outputs").mkdir(parents=True)
        (run_dir / "run.lock").write_text(
            text.replace("a" * 64, f"{index:064x}", 1).replace("RUN", f"run{index:05d}")
        )
        (run_dir / "stdout.log").write_text("done\n")
        for epoch in range(2):  # a run's own outputs, which ls must not walk
            (run_dir / "outputs" / f"epoch{epoch}.pt").write_bytes(b"x" * 64)


def time_child(argv: list[str]) -> tuple[float, float]:
    """Run `argv` (output discarded); return (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def time_call(function: Callable[[], object]) -> tuple[float, float]:
    """Call `function`; return (wall seconds, CPU seconds of this process)."""
    cpu = time.process_time()
    start = time.perf_counter()
    function()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=300, help="sheets fully loaded")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-ls-"))
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-ls-cache-"))
    os.environ["FLEXLOCK_CACHE_DIR"] = str(cache_dir)  # never the user's own cache
    try:
        started = time.perf_counter()
        build(root, args.runs)
        print(f"built {args.runs} runs in {time.perf_counter() - started:.1f}s under {root}")
        flexlock = [sys.executable, "-m", "flexlock.cli._main"]
        variants: dict[str, Callable[[], tuple[float, float]]] = {
            "find -name run.lock (baseline)": lambda: time_child(
                ["find", str(root), "-name", "run.lock"]
            ),
            "flexlock ls DIR --no-cache (every header parsed)": lambda: time_child(
                [*flexlock, "ls", str(root), "--no-cache"]
            ),
            "flexlock ls DIR (summaries cached, sheets unchanged)": lambda: time_child(
                [*flexlock, "ls", str(root)]
            ),
            "find_runs() walk only, in-process": lambda: time_call(
                lambda: sum(1 for _ in find_runs(root))
            ),
        }
        sheet_kib = next(find_runs(root)).stat().st_size / 1024
        count = sum(1 for _ in find_runs(root))
        assert count == args.runs, f"found {count} runs, built {args.runs}"
        # Warm the page cache and fill the summary cache (sheets look finished a minute ago,
        # as the racy-clean rule of the cache wants).
        old = time.time() - 60
        for path in find_runs(root):
            os.utime(path, (old, old))
        variants["flexlock ls DIR (summaries cached, sheets unchanged)"]()
        variants["find -name run.lock (baseline)"]()
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(args.repeat):  # interleaved, so drifting load hits every variant alike
            for name, measure in variants.items():
                samples[name].append(measure())
        sample_paths = [path for _, path in zip(range(args.sample), find_runs(root), strict=False)]
        full_wall, full_cpu = time_call(lambda: [load(path) for path in sample_paths])
        header_wall, header_cpu = time_call(lambda: [read_summary(path) for path in sample_paths])
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cache_dir, ignore_errors=True)

    base_wall = statistics.median(wall for wall, _ in samples["find -name run.lock (baseline)"])
    base_cpu = statistics.median(cpu for _, cpu in samples["find -name run.lock (baseline)"])
    lines = [
        "# flexlock ls: listing runs",
        "",
        f"`python benchmarks/bench_ls.py --runs {args.runs} --repeat {args.repeat}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, shared machine, warm page cache).",
        "",
        f"{args.runs} run directories, each with a {sheet_kib:.0f} KiB "
        "sheet (30-key config, 150 packages, one embedded upstream sheet) and 3 output files "
        "(2 in a sub-directory). Median of "
        f"{args.repeat} interleaved repetitions; ratios against `find` measured in the same run.",
        "",
        "| variant | wall (s) | wall / find | CPU (s) | CPU / find |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in samples.items():
        wall = statistics.median(value[0] for value in values)
        cpu = statistics.median(value[1] for value in values)
        lines.append(
            f"| {name} | {wall:.3f} | {wall / base_wall:.1f}x | {cpu:.3f} | {cpu / base_cpu:.1f}x |"
        )
    lines += [
        "",
        f"Per sheet, on {len(sample_paths)} sheets: header read (`read_summary`) "
        f"{header_wall / len(sample_paths) * 1e3:.2f} ms vs full strict `load()` "
        f"{full_wall / len(sample_paths) * 1e3:.2f} ms: the header read costs "
        f"{header_cpu / full_cpu:.2f}x the CPU of a full load.",
        "",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
