"""Recording outputs: its cost against a bare hash pass, and what a task list pays for it.

    python benchmarks/bench_outputs.py                 # 1 GiB in 100 files, 5 rounds
    python benchmarks/bench_outputs.py --mib 256 --rounds 3
    python benchmarks/bench_outputs.py --ab 5b57530    # also: 1,000 tasks, A/B vs a commit

1. A save_dir holding 1 GiB in 100 files: `record_outputs` (what a finishing run does,
   with a fresh hash cache each round) against a bare `hashlib.sha256` pass over the same
   files in 1 MiB reads, interleaved, page cache warm for both. CPU and wall time.
2. A run that wrote nothing: `record_outputs` of an empty save_dir against a whole
   `runlock()` cycle of the same run.
3. With `--ab REV`: 1,000 no-op tasks (`--n_jobs 2`) with this tree's flexlock and with
   REV's (its core and cli sources put first on PYTHONPATH), interleaved A B A B A B.

Results go to benchmarks/results/outputs.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_tasks import SCRIPT, _git, timed

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "outputs.md"


def _measure(action: Callable[[], object]) -> tuple[float, float]:
    """Return (wall, CPU) seconds of `action` in this process (threads' CPU included)."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def _bare_hash(files: list[Path]) -> None:
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    for path in files:
        digest = hashlib.sha256()
        with path.open("rb", buffering=0) as stream:
            while read := stream.readinto(buffer):
                digest.update(view[:read])
        digest.hexdigest()


def outputs_against_hashlib(mib: int, rounds: int, temp: Path) -> list[str]:
    from flexlock.core._outputs import record_outputs

    run_dir = temp / "results" / "train"
    run_dir.mkdir(parents=True)
    files = []
    chunk = os.urandom(1 << 20)
    per_file = max(1, mib // 100)
    for index in range(100):
        path = run_dir / f"shard-{index:03d}.bin"
        with path.open("wb") as stream:
            for _ in range(per_file):
                stream.write(chunk)
        files.append(path)
    old = time.time() - 10  # results of a finished run, past the cache's racy window
    for path in files:
        os.utime(path, (old, old))
    _bare_hash(files)  # warm the page cache for both
    bare, flexlock = [], []
    for round_index in range(rounds):
        os.environ["FLEXLOCK_CACHE_DIR"] = str(temp / f"cache-{round_index}")  # cold cache
        bare.append(_measure(lambda: _bare_hash(files)))
        flexlock.append(_measure(lambda: record_outputs(run_dir, manifests=False)))
    bare_wall = statistics.median(w for w, _ in bare)
    bare_cpu = statistics.median(c for _, c in bare)
    ours_wall = statistics.median(w for w, _ in flexlock)
    ours_cpu = statistics.median(c for _, c in flexlock)
    total = per_file * 100
    return [
        f"### {total} MiB in 100 files, median of {rounds} interleaved rounds",
        "",
        "| measurement | wall s | CPU s |",
        "|---|---|---|",
        f"| bare hashlib.sha256, 1 MiB reads | {bare_wall:.3f} | {bare_cpu:.3f} |",
        f"| record_outputs (fresh hash cache) | {ours_wall:.3f} | {ours_cpu:.3f} |",
        "",
        f"- ratio: {ours_cpu / bare_cpu:.2f}x CPU, {ours_wall / bare_wall:.2f}x wall "
        "(target: at most 1.1x)",
        "",
    ]


def nothing_written(rounds: int, temp: Path) -> list[str]:
    from flexlock.core import runlock
    from flexlock.core._outputs import record_outputs

    os.chdir(temp)
    empty = temp / "results" / "empty"
    empty.mkdir(parents=True)
    record = [_measure(lambda: record_outputs(empty))[0] for _ in range(rounds * 20)]

    def cycle() -> None:
        with runlock(
            config={"save_dir": "results/cycle"}, repos=[], packages=False, finalize_at_exit=False
        ):
            pass

    cycle()
    cycles = [_measure(cycle)[0] for _ in range(rounds * 4)]
    recorded = statistics.median(record) * 1e6
    whole = statistics.median(cycles) * 1e6
    return [
        "### A run that wrote nothing",
        "",
        f"- record_outputs of an empty save_dir: {recorded:.0f} µs (median of {len(record)})",
        f"- a whole runlock() cycle of that run: {whole:.0f} µs (median of {len(cycles)})",
        f"- share of the cycle: {recorded / whole:.1%}",
        "",
    ]


def _old_sources(rev: str, temp: Path) -> str:
    """Extract REV's core and cli sources; return a PYTHONPATH that puts them first."""
    target = temp / "old"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev, "flexlock-core/src", "flexlock-cli/src"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return os.pathsep.join(str(target / part / "src") for part in ("flexlock-core", "flexlock-cli"))


def tasks_against(rev: str, temp: Path, tasks: int) -> list[str]:
    old_path = _old_sources(rev, temp)
    python = sys.executable
    rows = {"this tree": [], rev: []}
    for round_index in range(3):
        for label, pythonpath in (("this tree", ""), (rev, old_path)):
            root = temp / f"tasks-{round_index}-{label.replace(' ', '-')}" / "repo"
            root.mkdir(parents=True)
            (root / "process.py").write_text(SCRIPT)
            (root / ".gitignore").write_text("results/\n")
            _git(root, "init", "-q", "-b", "main")
            _git(root, "add", ".")
            _git(root, "commit", "-q", "-m", "bench")
            (root / "tasks.txt").write_text("".join(f"{i}\n" for i in range(tasks)))
            # Past the capture's racy window, as a real project's files are: otherwise the
            # first second of tasks re-captures the brand-new checkout, for either tree.
            time.sleep(2.5)
            if pythonpath:
                os.environ["PYTHONPATH"] = pythonpath
            else:
                os.environ.pop("PYTHONPATH", None)
            command = [python, "process.py", "--tasks", "tasks.txt", "--task_to", "param"]
            rows[label].append(timed([*command, "--n_jobs", "2"], root))
    os.environ.pop("PYTHONPATH", None)
    now = statistics.median(wall for wall, _ in rows["this tree"]) / tasks * 1000
    before = statistics.median(wall for wall, _ in rows[rev]) / tasks * 1000
    now_cpu = statistics.median(cpu for _, cpu in rows["this tree"]) / tasks * 1000
    before_cpu = statistics.median(cpu for _, cpu in rows[rev]) / tasks * 1000
    return [
        f"### {tasks} no-op tasks, `--n_jobs 2`: this tree against {rev} (A B A B A B)",
        "",
        "| flexlock | wall ms/task | CPU ms/task |",
        "|---|---|---|",
        f"| {rev} | {before:.2f} | {before_cpu:.2f} |",
        f"| this tree | {now:.2f} | {now_cpu:.2f} |",
        "",
        f"- ratio: {now / before:.2f}x wall, {now_cpu / before_cpu:.2f}x CPU per task",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="total output size (default 1024)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--ab", metavar="REV", help="also time a task list against commit REV")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks for --ab (default 1000)")
    args = parser.parse_args()
    lines = [
        "# Recording outputs (bench_outputs.py)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs. Measured by "
        f"`python benchmarks/bench_outputs.py {' '.join(sys.argv[1:])}`.",
        "",
    ]
    home = Path.cwd()
    with tempfile.TemporaryDirectory() as temp:
        lines += outputs_against_hashlib(args.mib, args.rounds, Path(temp))
        lines += nothing_written(args.rounds, Path(temp))
        os.chdir(home)
        if args.ab:
            lines += tasks_against(args.ab, Path(temp), args.tasks)
    text = "\n".join(lines)
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
