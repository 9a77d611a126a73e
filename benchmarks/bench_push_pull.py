"""Push then pull of a 3-stage lineage of N small files vs a plain `rclone copy` of them.

    python benchmarks/bench_push_pull.py [--files 10000]

Both sides use a local-directory rclone remote (configured by environment
variables) on the same disk, measured in the same run; results go to
benchmarks/results/push_pull.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "push_pull.md"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def _make_lineage(root: Path, n_files: int) -> Path:
    import attrs

    from flexlock.core import (
        EnvRecord,
        PrevRecord,
        RepoRecord,
        RunLock,
        compute_id,
        dump,
        hash_path,
    )

    os.environ.update(
        {
            "GIT_AUTHOR_NAME": "b",
            "GIT_AUTHOR_EMAIL": "b@b",
            "GIT_COMMITTER_NAME": "b",
            "GIT_COMMITTER_EMAIL": "b@b",
        }
    )
    _git(root, "init", "-q", "--bare", "origin.git")
    work = root / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    (work / "code.py").write_text("pass\n")
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "c")
    _git(work, "remote", "add", "origin", str(root / "origin.git"))
    repo = RepoRecord(
        root=str(work),
        commit=_git(work, "rev-parse", "HEAD"),
        branch="main",
        remote=None,
        dirty=False,
        tree=_git(work, "rev-parse", "HEAD^{tree}"),
        snapshot=_git(work, "rev-parse", "HEAD"),
    )
    data = work / "data"
    for index in range(n_files):
        sub = data / f"{index // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{index}.bin").write_bytes(os.urandom(512))
    prev = None
    for stage in ("prepare", "train", "evaluate"):
        save_dir = work / "results" / stage
        save_dir.mkdir(parents=True)
        (save_dir / "out.txt").write_text(stage)
        lock = RunLock(
            id="sha256:" + "0" * 64,  # replaced below by the id its fields hash to (pull checks)
            status="succeeded",
            created="2026-11-27T00:00:00Z",
            config={"stage": stage},
            save_dir=f"results/{stage}",
            code={".": repo},
            data={"data": hash_path(data)} if stage == "prepare" else {},
            prevs={}
            if prev is None
            else {
                f"results/{prev[0]}": PrevRecord(
                    id=prev[1].id, path=f"results/{prev[0]}/run.lock", lock=prev[1]
                )
            },
            env=EnvRecord(
                python="", implementation="", platform="", hostname="", user="", cwd=str(work)
            ),
        )
        lock = attrs.evolve(
            lock,
            id=compute_id(
                lock.config,
                {key: code.tree for key, code in lock.code.items()},
                {key: record.hash for key, record in lock.data.items()},
                {key: upstream.id for key, upstream in lock.prevs.items()},
            ),
        )
        dump(lock, save_dir / "run.lock")
        prev = (stage, lock)
    return work


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    os.environ["RCLONE_CONFIG_STORE_TYPE"] = "local"
    flexlock = [sys.executable, "-m", "flexlock.cli._main"]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        work = _make_lineage(root, args.files)
        started = time.perf_counter()
        subprocess.run(
            ["rclone", "copy", str(work / "data"), f"store:{root}/plain/data"], check=True
        )
        subprocess.run(["rclone", "copy", str(work / "data"), str(root / "plain-back")], check=True)
        plain = time.perf_counter() - started
        started = time.perf_counter()
        out = subprocess.run(
            [*flexlock, "push", "results/evaluate", "--data-remote", f"store:{root}/remote"],
            cwd=work,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        pushed = time.perf_counter() - started
        tag = out.split("flexlock pull ")[1].split()[0]
        started = time.perf_counter()
        subprocess.run(
            [
                *flexlock,
                "pull",
                tag,
                "--data-remote",
                f"store:{root}/remote",
                "--into",
                str(root / "restored"),
                "--repo",
                str(root / "origin.git"),
            ],
            check=True,
            capture_output=True,
        )
        pulled = time.perf_counter() - started
        shutil.rmtree(root / "restored")
    lines = [
        "# push + pull of a 3-stage lineage vs plain rclone copy (up + down)",
        "",
        f"files: {args.files} x 512 B, local rclone remote; "
        f"`python benchmarks/bench_push_pull.py --files {args.files}`",
        "",
        "| what | seconds | ratio to plain rclone |",
        "|---|---|---|",
        f"| plain rclone copy up + down | {plain:.2f} | 1.00 |",
        f"| flexlock push (3 runs, verify, tags, markers) | {pushed:.2f} | {pushed / plain:.2f} |",
        f"| flexlock pull (3 runs, staging, sha256 verify) | {pulled:.2f} | {pulled / plain:.2f} |",
        f"| push + pull | {pushed + pulled:.2f} | {(pushed + pulled) / plain:.2f} |",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
