"""Benchmark `ls`'s header reader on oversize sheets against `show`'s full reader.

Issue 20: `flexlock ls` took 176 s to say `invalid` on a 70 MB sheet while `show`
refused it in 0.2 s. This times, interleaved and repeated (median of --repeat):

- baseline  `load()` (what `show` does: refuses an oversize sheet by its size)
- `read_summary()` (what `ls` does) on the same 70 MB sheet: must answer `invalid`
- `read_summary()` on a 60 MB sheet under the cap whose bulk is after the header
  (the header search must not re-read what it already searched)

Figures are ratios to the baseline measured in the same run (the machine is shared
and noisy).

    python benchmarks/bench_ls_hostile.py              # 5 repetitions
    python benchmarks/bench_ls_hostile.py --repeat 9
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flexlock.core import LockFileError, RunLock, dump, load, read_summary

RESULTS = Path(__file__).parent / "results" / "ls_hostile.md"


def _sheets(root: Path) -> tuple[Path, Path]:
    lock = RunLock(id="sha256:" + "a" * 64, status="succeeded", created="2026-11-26T12:00:00Z")
    over, under = root / "over" / "run.lock", root / "under" / "run.lock"
    for path in (over, under):
        path.parent.mkdir()
        dump(lock, path)
    text = over.read_text()
    # 70 MB of header (a huge config value), the shape that took 176 s.
    over.write_text(text.replace("config: {}", "config:\n  blob: " + "x" * 70_000_000, 1))
    with under.open("a") as handle:  # 60 MB after the header
        handle.write(("# " + "y" * 98 + "\n") * 600_000)
    return over, under


def _time(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _load_refused(path: Path) -> None:
    try:
        load(path)
    except LockFileError:
        return
    raise AssertionError("load() accepted an oversize sheet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        over, under = _sheets(Path(directory))
        assert read_summary(over).status == "invalid"
        assert read_summary(under).status == "succeeded"
        times: dict[str, list[float]] = {"load": [], "ls_over": [], "ls_under": []}
        for _ in range(args.repeat):  # interleaved: the same load on each variant
            times["load"].append(_time(lambda: _load_refused(over)))
            times["ls_over"].append(_time(lambda: read_summary(over)))
            times["ls_under"].append(_time(lambda: read_summary(under)))
    median = {name: statistics.median(values) for name, values in times.items()}
    base = median["load"]
    rows = [
        ("`load()` of the 70 MB sheet, refused (baseline, what `show` does)", "load"),
        ("`read_summary()` of the 70 MB sheet → `invalid` (what `ls` does)", "ls_over"),
        ("`read_summary()` of a 60 MB sheet under the cap, header first", "ls_under"),
    ]
    lines = [
        "# `ls` on oversize sheets (benchmarks/bench_ls_hostile.py)",
        "",
        f"Median of {args.repeat} interleaved repetitions; machine shared with other jobs",
        "(2 cores, loaded), so only ratios to the same-run baseline mean much.",
        "Before this change `ls` took 176 s on the 70 MB sheet (issue 20).",
        "",
        "| variant | median | vs baseline |",
        "|---|---:|---:|",
        *(
            f"| {label} | {median[key] * 1000:.2f} ms | {median[key] / base:.2f}x |"
            for label, key in rows
        ),
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
