"""Serial task lists at scale: per-task overhead, resume and planning memory (issues 21, 25).

    python benchmarks/bench_serial.py              # 1,000 tasks
    python benchmarks/bench_serial.py --n 100000   # issue 21 item 6 (long: ~1 h here)

A script in a fresh git repository (so every task records its code, as for a user) runs
N no-op tasks serially (`--tasks tasks.txt --task_to param`, no --n_jobs). Measured in the
same run, as baselines, each in a new interpreter:

- a bare loop: N calls of a no-op function (what any Python loop costs);
- a bare durable loop: N small files (the size of a run sheet) each written as flexlock
  writes a sheet it must not lose: temp file, one fsync, rename, in its own directory.

Then the finished list is run again (every task skipped: the resume). Per-task overhead
is (wall of the list - wall of `python -c pass`) / N, less the bare loop's; the ratio of
issue 21 is the list's per-task time over the bare durable loop's. Planning memory is the
peak RSS of the resume (which plans every task and runs none) over a bare interpreter's,
per task, over a 10-task resume (the imports). Results go to benchmarks/results/serial.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "serial.md"

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

BARE = """
def noop(x):
    return x

for i in range({n}):
    noop(i)
"""

BARE_DURABLE = """
import os
payload = b"x" * {size}
for i in range({n}):
    directory = f"out/{{i}}"
    os.makedirs(directory)
    temp = f"{{directory}}/.tmp-run.lock"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.write(fd, payload)
    os.fsync(fd)
    os.close(fd)
    os.replace(temp, f"{{directory}}/run.lock")
"""


def timed(command: list[str], cwd: Path) -> tuple[float, float, int]:
    """Run `command`; return (wall s, CPU s of it and its children, its peak RSS in KiB)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(
        Path(tempfile.gettempdir()) / "bench-serial-pycache"
    )  # .pyc kept, outside the repo
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # /usr/bin/time would be simpler, but RUSAGE_CHILDREN's maxrss is the largest child
    # so far: a wrapper process per measurement keeps each figure its own.
    wrapper = [
        sys.executable,
        "-c",
        "import resource, subprocess, sys; "
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(code)",
        *command,
    ]
    result = subprocess.run(wrapper, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{command} failed:\n{result.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, int(result.stderr.strip().splitlines()[-1])


def _git(repo: Path, *args: str) -> None:
    identity = ("-c", "user.name=bench", "-c", "user.email=bench@example.com")
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of tasks (default 1000)")
    args = parser.parse_args()
    n = args.n
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-serial-") as temp:
        root = Path(temp) / "repo"
        root.mkdir()
        (root / "process.py").write_text(SCRIPT)
        (root / ".gitignore").write_text("results/\nout/\n*.py[co]\n")
        (root / "tasks.txt").write_text("".join(f"{i}\n" for i in range(n)))
        _git(root, "init", "-q", "-b", "main")
        _git(root, "add", ".")
        _git(root, "commit", "-q", "--no-gpg-sign", "-m", "bench")
        outside = Path(temp)  # the baselines live outside the repo: not part of its code
        (outside / "bare.py").write_text(BARE.format(n=n))
        command = [python, "process.py", "--tasks", "tasks.txt", "--task_to", "param"]
        passes = [timed([python, "-c", "pass"], root) for _ in range(5)]
        pass_wall = statistics.median(p[0] for p in passes)
        pass_rss = statistics.median(p[2] for p in passes)
        bare = timed([python, "bare.py"], outside)
        first = timed(command, root)
        sheet = next((root / "results" / "process").glob("*/run.lock")).stat().st_size
        (outside / "durable.py").write_text(BARE_DURABLE.format(n=n, size=sheet))
        durable = timed([python, "durable.py"], outside)
        resume = timed(command, root)
        # Planning's fixed cost (imports, the first sheets) is what 10 tasks' resume needs.
        (root / "few.txt").write_text("".join(f"{i}\n" for i in range(10)))
        few = [python, "process.py", "--tasks", "few.txt", "--task_to", "param"]
        few_rss = statistics.median(timed(few, root)[2] for _ in range(3))
        done = sum(1 for _ in (root / "results" / "process").glob("*/run.lock"))
        refs = subprocess.run(
            ["git", "for-each-ref", "refs/flexlock/"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.count("\n")
    per_task = (first[0] - pass_wall) / n * 1000
    per_bare = (bare[0] - pass_wall) / n * 1000
    per_durable = (durable[0] - pass_wall) / n * 1000
    load = os.getloadavg()[0]
    rows = [
        ("`python -c pass` (median of 5)", pass_wall, None, pass_rss),
        (f"bare loop, {n} no-op calls", *bare),
        (f"bare durable loop, {n} files of {sheet} B (mkdir, write, 1 fsync, rename)", *durable),
        (f"flexlock serial list, {n} no-op tasks", *first),
        ("flexlock resume of the finished list (all skipped)", *resume),
    ]
    lines = [
        "# Serial task lists at scale",
        "",
        f"`python benchmarks/bench_serial.py --n {n}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs shared, load average {load:.1f}). "
        f"{done} sheets written; {refs} ref(s) under refs/flexlock/ afterwards.",
        "",
        "| measurement | wall s | CPU s | peak RSS MiB |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {wall:.2f} | {'' if cpu is None else f'{cpu:.2f}'} | {rss / 1024:.0f} |"
            for name, wall, cpu, rss in rows
        ),
        "",
        f"- per task: flexlock {per_task:.2f} ms, bare loop {per_bare:.4f} ms, bare durable "
        f"loop {per_durable:.2f} ms",
        f"- **overhead over the bare loop: {per_task - per_bare:.2f} ms per task** "
        "(issue 25 goal at 1,000 tasks: at most 5 ms)",
        f"- **per task over the bare durable loop: {per_task / max(per_durable, 1e-9):.2f}x** "
        "(issue 21 goal at 100,000 tasks: at most 3x)",
        f"- **resume / first run: {resume[0] / first[0]:.1%} wall** "
        f"({resume[1] / first[1]:.1%} CPU; goal: at most 5%)",
        f"- **planning memory: {(resume[2] - few_rss) / (n - 10) * 1024:.0f} B per task** (peak "
        "RSS of the resume, which plans every task and runs none, over a 10-task resume's "
        f"{few_rss / 1024:.0f} MiB of imports; goal: at most 2 KB per task)",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
