"""Peak memory of hashing a large tree, and `verify --fast`'s listing, against baselines.

    python benchmarks/bench_hashing_memory.py                       # 1,000,000 tiny files
    python benchmarks/bench_hashing_memory.py --files 200000 --repeat 3
    python benchmarks/bench_hashing_memory.py --baseline-src /tmp/base/flexlock-core/src

Each measurement is a fresh interpreter, so peak RSS (VmHWM of /proc/self/status, else
`resource.getrusage`) is that of one hash: the RSS after importing flexlock is subtracted
and the rest divided by the number of files. Rows, each with its baseline measured in the
same run, interleaved and repeated (medians; the machine is shared: CPU is noisy, RSS not):

- cold (no cache) and warm (unchanged, cache filled): this checkout, and with
  `--baseline-src` the same cases with another checkout's `flexlock-core/src` first on
  `PYTHONPATH` (the previous commit, say), in the same run;
- a bare walk + stat (`os.scandir`, the floor of any listing) and a bare hasher (paths and
  hex digests in lists) for scale;
- `verify --fast`'s listing (`list_files`, then the name comparison against the manifest)
  against the bare walk + stat, on the same tree (CPU).

Results go to benchmarks/results/hashing_memory.md.
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

RESULTS = Path(__file__).parent / "results" / "hashing_memory.md"
SETTLED_NS = 3600 * 1_000_000_000

PROBE = r"""
import json, os, resource, sys, time
mode, root = sys.argv[1], sys.argv[2]
import flexlock.core, flexlock.core._hashing, flexlock.core._walk, flexlock.core._manifest

def peak_kib():
    # VmHWM: this process image's own peak. ru_maxrss survives execve, so a child of a big
    # parent would start at the parent's RSS and report nothing of its own.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

base = peak_kib()
cpu = time.process_time()
if mode in ("cold", "warm"):
    from flexlock.core import hash_path
    files = hash_path(root, use_cache=mode == "warm").files
elif mode == "manifest":
    from flexlock.core import tree_manifest
    with open(sys.argv[3], "w", encoding="utf-8", errors="surrogateescape") as out:
        out.write(tree_manifest(root, use_cache=False))
    files = 1
elif mode == "fast":
    from flexlock.core._walk import list_files
    from flexlock.core._manifest import manifest_differences
    listing = list_files(root)
    manifest = open(sys.argv[3], encoding="utf-8", errors="surrogateescape").read()
    missing, extra = manifest_differences(manifest, listing.rels)
    assert not missing and not extra
    files = len(listing.rels)
elif mode == "walk":
    files, stack = 0, [root]
    while stack:
        with os.scandir(stack.pop()) as scan:
            for entry in scan:
                info = entry.stat()
                if entry.is_dir():
                    stack.append(entry.path)
                else:
                    files += 1
elif mode == "bare":
    import hashlib
    paths, digests, stack = [], [], [root]
    while stack:
        with os.scandir(stack.pop()) as scan:
            for entry in scan:
                if entry.is_dir():
                    stack.append(entry.path)
                else:
                    paths.append(entry.path)
    paths.sort()
    for path in paths:
        with open(path, "rb") as stream:
            digests.append(hashlib.sha256(stream.read()).hexdigest())
    files = len(paths)
cpu = time.process_time() - cpu
peak = peak_kib()
print(json.dumps({"files": files, "cpu": cpu, "bytes_per_file": (peak - base) * 1024 / files,
                  "peak_mib": peak / 1024}))
"""


def _make_tree(root: Path, count: int) -> None:
    settled = time.time_ns() - SETTLED_NS
    for index in range(count):
        directory = root / f"shard_{index // 1000:04d}"
        if index % 1000 == 0:
            directory.mkdir(parents=True)
        path = directory / f"file_{index:07d}.bin"
        path.write_bytes(b"%d" % index)
        os.utime(path, ns=(settled, settled))


def _probe(mode: str, root: Path, cache: Path, src: str | None, *extra: str) -> dict[str, float]:
    import json

    env = dict(os.environ, FLEXLOCK_CACHE_DIR=str(cache))
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode, str(root), *extra],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-src", help="another checkout's flexlock-core/src")
    parser.add_argument("--tree", help="reuse this tree (made by an earlier run)")
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="flexlock-bench-mem-") as scratch:
        work = Path(scratch)
        root = Path(args.tree) if args.tree else work / "data"
        if not root.exists():
            print(f"writing {args.files:,} files ...", flush=True)
            _make_tree(root, args.files)
        sides = {"this": None} | ({"base": args.baseline_src} if args.baseline_src else {})
        caches = {name: work / f"cache-{name}" for name in sides}
        for name, src in sides.items():  # fill each side's cache once
            _probe("warm", root, caches[name], src)
        manifest = work / "manifest"  # written by a child: this process stays small
        _probe("manifest", root, caches["this"], None, str(manifest))
        samples: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.repeat):
            for mode in ("cold", "warm"):
                for name, src in sides.items():
                    result = _probe(mode, root, caches[name], src)
                    samples.setdefault(f"{mode} {name}", []).append(result)
            for mode in ("walk", "fast", "bare"):
                extra = (str(manifest),) if mode == "fast" else ()
                samples.setdefault(mode, []).append(
                    _probe(mode, root, caches["this"], None, *extra)
                )
            print(".", end="", flush=True)
        print()
    median = {
        key: {field: statistics.median(s[field] for s in runs) for field in runs[0]}
        for key, runs in samples.items()
    }
    files = int(median["walk"]["files"])
    rows = [
        "| case | flexlock | baseline | ratio | target |",
        "|---|---|---|---|---|",
    ]

    def row(case: str, ours: float, theirs: float, unit: str, target: str) -> None:
        rows.append(
            f"| {case} | {ours:,.0f} {unit} | {theirs:,.0f} {unit} | {ours / theirs:.2f}x"
            f" | {target} |"
        )

    for mode in ("cold", "warm"):
        ours = median[f"{mode} this"]
        ok = "ok" if ours["bytes_per_file"] <= 256 else "MISSED"
        if "base" in sides:
            theirs = median[f"{mode} base"]
            row(
                f"{files:,} files, {mode}: peak RSS per file vs previous commit",
                ours["bytes_per_file"],
                theirs["bytes_per_file"],
                "B",
                f"<= 256 B per file ({ok})",
            )
            row(
                f"{files:,} files, {mode}: CPU vs previous commit",
                ours["cpu"] * 1000,
                theirs["cpu"] * 1000,
                "ms",
                "<= 1.0x (+ noise): same or better",
            )
        else:
            rows.append(
                f"| {files:,} files, {mode}: peak RSS per file | "
                f"{ours['bytes_per_file']:.0f} B | | | <= 256 B ({ok}) |"
            )
    row(
        "scale: bare hasher (paths + hex digests in lists) vs bare walk+stat, peak RSS per file",
        median["bare"]["bytes_per_file"],
        max(median["walk"]["bytes_per_file"], 1),
        "B",
        "informative",
    )
    fast, walk = median["fast"]["cpu"], median["walk"]["cpu"]
    verdict = "ok" if fast / walk <= 1.3 else "MISSED"
    row(
        f"{files:,} files: `verify --fast` listing + name check vs bare walk+stat (CPU)",
        fast * 1000,
        walk * 1000,
        "ms",
        f"<= 1.3x ({verdict})",
    )
    load = os.getloadavg()[0]
    text = "\n".join(
        [
            "# Hashing memory and `verify --fast`",
            "",
            f"`python benchmarks/bench_hashing_memory.py --files {args.files}"
            f" --repeat {args.repeat}{' --baseline-src ...' if args.baseline_src else ''}`"
            f" ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python"
            f" {sys.version.split()[0]}, {os.cpu_count()} CPUs shared with other users,"
            f" load average {load:.1f} at the end, {time.time() - started:.0f} s in all)."
            " Medians of interleaved fresh processes; peak RSS minus the RSS after import,"
            " per file.",
            "",
            *rows,
            "",
        ]
    )
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
