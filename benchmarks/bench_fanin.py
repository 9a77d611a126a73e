"""Benchmark a lineage fan-in: one run over N upstream runs that share one ancestor.

An `evaluate` run reads N `train` runs, each of which read the same `prepare` run
(every sheet realistic: a 30-key config, a code record, a data input, 150
recorded packages). Its sheet is written and read in both formats, in the same run:

- schema 1 (the format before this change, written by the same code's schema-1
  path, which writes schema-1 sheets byte for byte as before: tests/core/
  test_upstreams.py): each upstream sheet embedded whole, so `prepare` N times;
- schema 2 (today): each distinct upstream run once, package lists once.

Reported per format: sheet size, `dump()` time, `load()` time (median of
--rounds, each a full strict load), and the peak RSS a fresh interpreter adds by
loading the sheet. Ratios are schema 2 against schema 1. The N train sheets are
parsed from their own text first, as `runlock(prevs=...)` loads them, so the
writer sees N equal but distinct copies of `prepare`, as it does in real use.

    python benchmarks/bench_fanin.py                    # N = 6 and 1,000, 3 rounds
    python benchmarks/bench_fanin.py --widths 6,100 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs

from flexlock.core import (
    DataRecord,
    EnvRecord,
    PrevRecord,
    RepoRecord,
    RunLock,
    compute_id,
    dump,
    dumps,
    load,
    loads,
)

RESULTS = Path(__file__).parent / "results" / "fanin.md"
MAX_LOCK_BYTES = 64 * 1024 * 1024

ENV = EnvRecord(
    "3.11.7",
    "cpython",
    "Linux-6.1",
    "node01",
    "me",
    "/home/me/project",
    argv=("train.py", "-o", "lr=0.1"),
    packages={f"package-{index}": f"1.{index}.0" for index in range(150)},
)


def run_sheet(name: str, upstream: dict[str, RunLock], schema: int, **config: object) -> RunLock:
    """Return a succeeded sheet of stage `name` that read `upstream` (key -> sheet)."""
    config = {f"key_{index}": index * 0.5 for index in range(28)} | config
    config["save_dir"] = f"results/{name}"
    prevs = {key: PrevRecord(lock.id, f"{key}/run.lock", lock) for key, lock in upstream.items()}
    code = {
        ".": RepoRecord(
            root="/home/me/project",
            commit="e2e188080c07bacd97dd80328502edf93ce8d6ee",
            branch="main",
            remote="git@example.org:me/project.git",
            dirty=True,
            tree="6c0feef3bb5a4a93c6b790c2b61f0274f014fd96",
            snapshot="4f2a342f2545b8e7e3e9e939330cd9d875fc6e5a",
            changes=(" M src/train.py",),
        )
    }
    data = {"data/images": DataRecord(hash="sha256:" + "d" * 64, size=2048, files=2)}
    return RunLock(
        id=compute_id(
            config,
            {key: repo.tree for key, repo in code.items()},
            {key: record.hash for key, record in data.items()},
            {key: prev.id for key, prev in prevs.items()},
        ),
        status="succeeded",
        created="2026-12-01T10:00:00Z",
        finished="2026-12-01T10:10:00Z",
        save_dir=f"results/{name}",
        config=config,
        code=code,
        data=data,
        prevs=prevs,
        env=ENV,
        flexlock=schema,
    )


def fan_in(width: int, schema: int) -> RunLock:
    """Return the evaluate sheet over `width` train runs sharing one prepare run."""
    prepare = run_sheet("prepare", {}, schema, split=0.2)
    trains = {}
    for index in range(width):
        train = run_sheet(f"train_{index}", {"results/prepare": prepare}, schema, seed=index)
        trains[f"results/train_{index}"] = loads(dumps(train))  # as runlock(prevs=) reads it
    return run_sheet("evaluate", trains, schema, metric="acc")


def timed(function: Callable[[], object], rounds: int) -> float:
    """Return the median wall time of `rounds` calls of `function`."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# VmHWM is this process image's own peak; ru_maxrss survives execve, so a child of this
# (large) parent would report the parent's peak.
_CHILD = """
import json, sys
from flexlock.core import load
import flexlock.core._lockfile, yaml, cattrs  # imported before the baseline
flexlock.core._lockfile.converter()

def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

before = peak()
load(sys.argv[1])
print(json.dumps((peak() - before) * 1024))
"""


def load_rss(path: Path) -> int:
    """Return the peak RSS (bytes) a fresh interpreter adds by loading `path`."""
    output = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], check=True, capture_output=True, text=True
    ).stdout
    added: int = json.loads(output)
    return added


@attrs.frozen
class Row:
    width: int
    schema: int
    size: int
    dump_s: float
    load_s: float
    rss: int


def measure(width: int, rounds: int, directory: Path) -> list[Row]:
    rows = []
    for schema in (1, 2):
        lock = fan_in(width, schema)
        path = directory / f"fanin-{width}-schema{schema}" / "run.lock"
        os.environ["FLEXLOCK_MAX_LOCK_BYTES"] = str(1 << 40)  # schema 1 may pass the cap
        dump_s = timed(lambda lock=lock, path=path: dump(lock, path), rounds)
        loaded = load(path)
        assert loaded == lock, "the sheet read back differs from the one written"
        load_s = timed(lambda path=path: load(path), rounds)
        rows.append(Row(width, schema, path.stat().st_size, dump_s, load_s, load_rss(path)))
        path.unlink()
    return rows


def _mib(size: float) -> str:
    return f"{size / 2**20:.2f} MiB" if size >= 2**20 else f"{size / 1024:.1f} KiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="6,1000", help="numbers of train runs")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    widths = [int(width) for width in args.widths.split(",")]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-fanin-") as directory:
        for width in widths:
            rows += measure(width, args.rounds, Path(directory))
            print(*rows[-2:], sep="\n", flush=True)

    lines = [
        "# Lineage fan-in: one run over N upstream runs sharing one ancestor",
        "",
        f"`python benchmarks/bench_fanin.py --widths {args.widths} --rounds {args.rounds}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, shared machine).",
        "",
        "`evaluate` reads N `train` runs that all read one `prepare` run; every sheet has a "
        "30-key config, a code record, a data input and 150 packages. Schema 1 is the format "
        "before this change (each upstream sheet embedded whole: `prepare` N times), "
        "schema 2 today's (each distinct run once, package lists once). Times are medians "
        f"of {args.rounds} rounds; RSS is what a fresh interpreter adds by loading the "
        "sheet; ratios are schema 2 / schema 1, measured in the same run.",
        "",
        "| N | schema | sheet size | per upstream run | dump() | load() | load peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        rss = _mib(row.rss) if row.rss else "under the import peak"
        lines.append(
            f"| {row.width} | {row.schema} | {_mib(row.size)} | {_mib(row.size / (row.width + 1))} "
            f"| {row.dump_s * 1e3:.0f} ms | {row.load_s * 1e3:.0f} ms | {rss} |"
        )
    lines += [
        "",
        "| N | size 2/1 | dump() 2/1 | load() 2/1 | load RSS 2/1 |",
        "|---:|---:|---:|---:|---:|",
    ]
    for old, new in zip(rows[::2], rows[1::2], strict=True):
        rss_ratio = f"{new.rss / old.rss:.2f}x" if old.rss else "n/a"
        lines.append(
            f"| {old.width} | {new.size / old.size:.3f}x | {new.dump_s / old.dump_s:.2f}x "
            f"| {new.load_s / old.load_s:.3f}x | {rss_ratio} |"
        )
    old = rows[-2]
    lines += [
        "",
        f"At N = {old.width} the schema-1 sheet is {old.size / MAX_LOCK_BYTES:.0%} of the "
        "reader's 64 MiB cap (`FLEXLOCK_MAX_LOCK_BYTES`); schema 1 grows by a train sheet "
        "plus a prepare sheet per upstream run, schema 2 by a train sheet without its "
        "package list.",
        "",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
