"""A real three-stage pipeline for the pull tests: a script using `runlock`, a bare git remote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests._helpers import git

__all__ = ["STAGE", "make_pipeline", "stage"]

STAGE = """\
import argparse
from pathlib import Path

from flexlock.core import runlock

parser = argparse.ArgumentParser()
parser.add_argument("name")
parser.add_argument("--data", action="append", default=[])
parser.add_argument("--prev", action="append", default=[])
args = parser.parse_args()
save_dir = f"results/{args.name}"
with runlock({"save_dir": save_dir, "name": args.name}, repos=["."], data=args.data,
             prevs=args.prev):
    text = "".join(Path(p).read_text() for p in args.data if Path(p).is_file())
    text += "".join(Path(p, "out.txt").read_text() for p in args.prev)
    Path(save_dir, "out.txt").write_text(f"{args.name}: {len(text)}\\n" + text)
"""


def stage(work: Path, *args: str) -> None:
    """Run one stage of the pipeline script in `work`."""
    subprocess.run([sys.executable, "stage.py", *args], cwd=work, check=True, capture_output=True)


def make_pipeline(tmp_path: Path) -> Path:
    """Record prepare_a, prepare_b (committed code) -> train (fan-in, an uncommitted edit).

    The repo `work` has a bare `origin` remote; returns `work`.
    """
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "commit.gpgsign", "false")
    (work / "stage.py").write_text(STAGE)
    (work / ".gitignore").write_text("data/\nresults/\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "pipeline")
    git(work, "remote", "add", "origin", str(origin))
    (work / "data" / "images").mkdir(parents=True)
    (work / "data" / "raw.csv").write_text("a,b\n1,2\n")
    for index in range(3):
        (work / "data" / "images" / f"{index}.txt").write_text(f"image {index}\n")
    stage(work, "prepare_a", "--data", "data/raw.csv")
    stage(work, "prepare_b", "--data", "data/images")
    with (work / "stage.py").open("a") as handle:  # uncommitted: train's code differs
        handle.write("# tuned\n")
    stage(work, "train", "--prev", "results/prepare_a", "--prev", "results/prepare_b")
    return work
