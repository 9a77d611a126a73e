"""Import and command start-up cost, as ratios over `python -c pass` measured in the same run.

    python benchmarks/bench_startup.py [--rounds 20]

Measures `import flexlock.core` (wall and `-X importtime` total), `import
flexlock.cli`, and `flexlock --help` (which loads every subcommand registrar).
Rounds are interleaved and medians reported; bytecode is cached in a temp
PYTHONPYCACHEPREFIX (as on a user's machine, even where the environment sets
PYTHONDONTWRITEBYTECODE). Results: benchmarks/results/startup.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "startup.md"

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import flexlock.core": [sys.executable, "-c", "import flexlock.core"],
    "import flexlock.cli": [sys.executable, "-c", "import flexlock.cli"],
    "from flexlock.core import runlock": [
        sys.executable,
        "-c",
        "from flexlock.core import runlock",
    ],
    "flexlock --help": [sys.executable, "-m", "flexlock.cli._main", "--help"],
}


def _cpu_and_wall(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    before = os.times()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return cpu, time.perf_counter() - started


def _importtime_total(env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import flexlock.core"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    match = re.search(r"\|\s*(\d+) \| flexlock\.core\s*$", out, re.MULTILINE)
    return int(match.group(1)) / 1e6 if match else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        for command in CASES.values():  # warm the bytecode cache
            subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in CASES}
        importtime = []
        for _ in range(args.rounds):
            for name, command in CASES.items():
                samples[name].append(_cpu_and_wall(command, env))
            importtime.append(_importtime_total(env))
    base_cpu = statistics.median(c for c, _ in samples["python -c pass"])
    base_wall = statistics.median(w for _, w in samples["python -c pass"])
    lines = [
        "# Start-up cost (medians of interleaved rounds)",
        "",
        f"`python benchmarks/bench_startup.py --rounds {args.rounds}`; load average at start: "
        f"{os.getloadavg()[0]:.1f}",
        "",
        "| command | wall ms | ratio | CPU ms | ratio |",
        "|---|---|---|---|---|",
    ]
    for name in CASES:
        cpu = statistics.median(c for c, _ in samples[name])
        wall = statistics.median(w for _, w in samples[name])
        lines.append(
            f"| `{name}` | {wall * 1e3:.1f} | {wall / base_wall:.2f} | {cpu * 1e3:.1f} | "
            f"{cpu / base_cpu:.2f} |"
        )
    total = statistics.median(importtime)
    lines += [
        "",
        f"`python -X importtime -c 'import flexlock.core'` cumulative for flexlock.core: "
        f"{total * 1e3:.1f} ms = {total / base_wall:.2f}x the wall time of `python -c pass`",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
