"""Task-list overhead: 1,000 trivial tasks with `--n_jobs 2`, then their resume (issue 8).

    python benchmarks/bench_tasks.py            # 1,000 tasks (~1-2 min on a loaded machine)
    python benchmarks/bench_tasks.py --tasks 200

The script sits in a fresh git repository (so each task's run sheet records the code, as for
a real user) and its task does nothing, so all the time is flexlock's: validation, dispatch to
loky workers, run sheet (code capture, env, atomic writes), log capture and result. Measured
in the same run, as baselines: `python -c pass` (interpreter start) and the same 1,000 no-op
calls through `joblib.Parallel(n_jobs=2)` (the raw dispatch cost). Then the finished list is
resubmitted three times (every task skipped) and the median is compared to the first run.
Results go to benchmarks/results/cli.md.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_cli_startup import _write_section, bytecode_env

SCRIPT = """
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 0
    save_dir: str = "results/process"

@clicfg
def main(cfg: Config) -> None:
    pass

if __name__ == "__main__":
    main(Config())
"""

JOBLIB_BASELINE = """
import sys
from joblib import Parallel, delayed

def noop(x):
    return x

list(Parallel(n_jobs=2, return_as="generator_unordered")(delayed(noop)(i) for i in range({n})))
"""


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run `command`; return (wall seconds, CPU seconds of it and its reaped children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False, env=bytecode_env(cwd.parent)
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{command} failed:\n{result.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _git(repo: Path, *args: str) -> None:
    identity = (
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@example.com",
        "-c",
        "commit.gpgsign=false",
    )
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000, help="number of tasks (default 1000)")
    args = parser.parse_args()
    n = args.tasks
    python = sys.executable
    with tempfile.TemporaryDirectory() as temp:
        # The repository is a subdirectory: the .pyc cache (in the temp dir) must not be
        # part of the recorded code, or each new .pyc would count as a code change.
        root = Path(temp) / "repo"
        root.mkdir()
        (root / "process.py").write_text(SCRIPT)
        (root / ".gitignore").write_text("results/\n")
        _git(root, "init", "-q", "-b", "main")
        _git(root, "add", ".")
        _git(root, "commit", "-q", "-m", "bench")
        (root / "tasks.txt").write_text("".join(f"{i}\n" for i in range(n)))
        (root / "baseline.py").write_text(JOBLIB_BASELINE.format(n=n))
        command = [
            python,
            "process.py",
            "--tasks",
            "tasks.txt",
            "--task_to",
            "param",
            "--n_jobs",
            "2",
        ]
        pass_time = statistics.median(timed([python, "-c", "pass"], root)[0] for _ in range(5))
        joblib_wall, joblib_cpu = timed([python, "baseline.py"], root)
        first_wall, first_cpu = timed(command, root)
        resumes = [timed(command, root) for _ in range(3)]
        done = sum(1 for _ in (root / "results/process").glob("*/run.lock"))
    resume_wall = statistics.median(r[0] for r in resumes)
    resume_cpu = statistics.median(r[1] for r in resumes)
    per_task = (first_wall - pass_time) / n * 1000
    per_task_joblib = (joblib_wall - pass_time) / n * 1000
    text = "\n".join(
        [
            "## Task lists (bench_tasks.py)",
            "",
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"Python {sys.version.split()[0]}, "
            f"{n} no-op tasks, `--n_jobs 2`, script in a git repo; {done} run sheets written.",
            "",
            "| measurement | wall s | CPU s |",
            "|---|---|---|",
            f"| `python -c pass` (median of 5) | {pass_time:.3f} | |",
            f"| raw joblib, {n} no-op calls, n_jobs=2 | {joblib_wall:.2f} | {joblib_cpu:.2f} |",
            f"| flexlock first run | {first_wall:.2f} | {first_cpu:.2f} |",
            f"| flexlock resume, all skipped (median of 3) | {resume_wall:.2f} "
            f"| {resume_cpu:.2f} |",
            "",
            f"- overhead per task, first run: {per_task:.1f} ms wall "
            f"({per_task / max(per_task_joblib, 1e-9):.0f}x raw joblib dispatch of "
            f"{per_task_joblib:.2f} ms)",
            f"- resume / first run: {resume_wall / first_wall:.1%} wall, "
            f"{resume_cpu / first_cpu:.1%} CPU",
            "",
        ]
    )
    print(text)
    _write_section(text, "## Task lists")


if __name__ == "__main__":
    main()
