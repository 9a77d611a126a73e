"""Startup of the `flexlock` command and a 30-field `@clicfg --help` vs `python -c pass` (issue 22).

    python benchmarks/bench_command_startup.py            # 15 interleaved rounds
    python benchmarks/bench_command_startup.py --rounds 30
    python benchmarks/bench_command_startup.py --base /path/to/old/checkout  # before/after

Targets: `flexlock --help` <= 3x, `flexlock show RUN` <= 4x, a 30-field `@clicfg`
script's `--help` <= 4x, `import flexlock.core` < 2x `python -c pass`. Every program is
run once per round, round-robin, so load on this shared machine hits all alike; the
ratio is of medians of wall time. The installed packages' own __pycache__ is used, as on
a user's machine (the first round, which may write it, is not counted;
PYTHONDONTWRITEBYTECODE is dropped from the children's environment, else flexlock's
own sources would be compiled on every call). Two floors are measured too: what
`show` cannot avoid (PyYAML, argparse) and the 30-field script without `@clicfg`
(its own `import attrs` and classes). With `--base DIR`, `show` and the `@clicfg`
`--help` are also run from DIR's sources (e.g. a worktree of the previous commit).
Results go to benchmarks/results/commands.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_cli_startup import flexlock_app  # the same 30-field config

RESULTS = Path(__file__).parent / "results" / "commands.md"
TARGETS = {
    "flexlock --help": 3.0,
    "flexlock show RUN": 4.0,
    "30-field @clicfg --help": 4.0,
    "import flexlock.core": 2.0,
}
# TAB is compared with the same script's --help (not with `python -c pass`).
TAB, TAB_BASE = "30-field @clicfg -o TAB", "30-field @clicfg --help"


def _programs(work: Path, base: Path | None) -> dict[str, list[str]]:
    py = sys.executable
    main = [str(Path(py).parent / "flexlock")]  # the console script a user runs
    app = work / "app.py"
    app.write_text(flexlock_app())
    bare = work / "bare.py"  # the same config classes, no flexlock: the script's own floor
    bare.write_text(
        flexlock_app().replace("from flexlock.cli import clicfg\n", "").split("@clicfg")[0]
        + "Config()\n"
    )
    run = work / "run"
    subprocess.run(
        [
            py,
            "-c",
            "from flexlock.core import runlock; "
            f"runlock(config={{'a': 1, 'save_dir': {str(run)!r}}})",
        ],
        check=True,
        capture_output=True,
        cwd=work,
    )
    return {
        "python -c pass": [py, "-c", "pass"],
        "flexlock --help": [*main, "--help"],
        "flexlock show RUN": [*main, "show", str(run)],
        "30-field @clicfg --help": [py, str(app), "--help"],
        "import flexlock.core": [py, "-c", "import flexlock.core"],
        # What TAB runs for `python app.py -o <TAB>` (flexlock completion bash).
        "30-field @clicfg -o TAB": ["env", "_FLEXLOCK_COMPLETE=1", py, str(app), "-o", ""],
        "floor of show: import yaml, argparse": [py, "-c", "import yaml, argparse"],
        "floor of the script: its attrs classes": [py, str(bare)],
        **(
            {}
            if base is None
            else {
                "flexlock show RUN (base)": [
                    "env",
                    f"PYTHONPATH={_sources(base)}",
                    *main,
                    "show",
                    str(run),
                ],
                "30-field @clicfg --help (base)": [
                    "env",
                    f"PYTHONPATH={_sources(base)}",
                    py,
                    str(app),
                    "--help",
                ],
            }
        ),
    }


def _sources(base: Path) -> str:
    return os.pathsep.join(str(base / f"flexlock-{part}" / "src") for part in ("core", "cli"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--base", type=Path, help="an older checkout to compare against")
    args = parser.parse_args()
    rounds = args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "NO_COLOR": "1"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        programs = _programs(work, args.base)
        times: dict[str, list[float]] = {name: [] for name in programs}
        for _ in range(rounds + 1):  # the first round warms the .pyc cache, not counted
            for name, argv in programs.items():
                start = time.perf_counter()
                subprocess.run(argv, env=env, cwd=work, capture_output=True, check=True)
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(samples[1:]) for name, samples in times.items()}
    base = medians["python -c pass"]
    base_arg = "" if args.base is None else f" --base {args.base}"
    lines = [
        "# `flexlock` command startup (issue 22)",
        "",
        f"`python benchmarks/bench_command_startup.py --rounds {rounds}{base_arg}`: "
        "median wall time of "
        f"{rounds} interleaved rounds on a loaded 2-core machine (other jobs running).",
        "",
        "| program | median ms | x `python -c pass` | target |",
        "|---|---:|---:|---:|",
    ]
    for name, value in medians.items():
        target = TARGETS.get(name)
        mark = (
            ""
            if target is None
            else f"<= {target:g}x" + (" ok" if value / base <= target else " MISSED")
        )
        lines.append(f"| {name} | {value * 1000:.1f} | {value / base:.2f} | {mark} |")
    lines.append("")
    lines.append(
        f"TAB to candidates for `-o <TAB>`: {medians[TAB] * 1000:.1f} ms, "
        f"{medians[TAB] / medians[TAB_BASE]:.2f}x the same script's `--help`."
    )
    if args.base is not None:
        lines.append("")
        lines.append(f"Before (`--base {args.base}`, the previous commit's sources) vs after:")
        lines.append("")
        for name in ("flexlock show RUN", "30-field @clicfg --help"):
            old = medians[f"{name} (base)"]
            lines.append(
                f"- {name}: {old / base:.2f}x -> {medians[name] / base:.2f}x "
                f"`python -c pass` ({old * 1000:.0f} -> {medians[name] * 1000:.0f} ms)"
            )
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
