"""Run the whole example pipeline, printing each command as you would type it.

    python run_demo.py            # from examples/pipeline/

Running it again skips what is already done and up to date: the train task
list resumes by itself, `--resume` makes a single run skip when its
save_dir holds a succeeded sheet with the same identity, and
`flexlock mlflow log --changed-only` logs only the runs whose run.lock changed
since their active MLflow run (`--delete-superseded` hides the runs a new log
replaces, so MLflow's default view shows one run per save dir).
"""

from __future__ import annotations

import glob
import os
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
FLEXLOCK = [PY, "-m", "flexlock.cli._main"]

STEPS = [
    (
        "prepare the data",
        [PY, "prepare.py", "--config", "conf/pipeline.yml", "--experiment", "prepare", "--resume"],
    ),
    (
        "train one model per learning rate, 2 at a time",
        [
            PY,
            "train.py",
            "--config",
            "conf/pipeline.yml",
            "--experiment",
            "train",
            "--tasks",
            "conf/lrs.txt",
            "--task_to",
            "optim.lr",
            "--n_jobs",
            "2",
        ],
    ),
    (
        "evaluate every trained model",
        [
            PY,
            "evaluate.py",
            "--config",
            "conf/pipeline.yml",
            "--experiment",
            "evaluate",
            "--resume",
        ],
    ),
    (
        "log the train runs whose sheet changed to MLflow (local store ./mlflow.db)",
        [
            *FLEXLOCK,
            "mlflow",
            "log",
            "--changed-only",
            "--delete-superseded",
            "log_runs.py:log_run",
            "results/train/*/",
        ],
    ),
    ("show the evaluation's run sheet and its lineage", [*FLEXLOCK, "show", "results/evaluate"]),
    (
        "explain how two train runs differ",
        [
            *FLEXLOCK,
            "diff",
            "results/train/optim.lr=0.01",
            "results/train/optim.lr=0.3",
            "--no-env",
        ],
    ),
    (
        "verify that data, code and upstream runs still match",
        [*FLEXLOCK, "verify", "results/evaluate"],
    ),
]


def _shown(command: list[str]) -> str:
    words = ["python" if w == PY else w for w in command]
    if words[:3] == ["python", "-m", "flexlock.cli._main"]:
        words = ["flexlock", *words[3:]]
    return shlex.join(words)


def main() -> int:
    os.chdir(HERE)
    for title, command in STEPS:
        print(f"\n### {title}\n$ {_shown(command)}", flush=True)
        # Expand globs as a shell would, once the earlier steps have made the directories.
        expanded = [
            m
            for word in command
            for m in (sorted(glob.glob(word)) if "*" in word else [word])  # noqa: PTH207 - shell-style patterns
        ]
        result = subprocess.run(expanded, check=False)
        if result.returncode != 0:
            print(f"demo: step failed with exit code {result.returncode}", file=sys.stderr)
            return result.returncode
    print(
        "\nDone. Where to look:\n"
        f"  run sheets:  {HERE}/results/*/run.lock (and results/train/*/run.lock)\n"
        "  lineage:     flexlock show results/evaluate --format mermaid\n"
        f"  MLflow UI:   mlflow ui --backend-store-uri sqlite:///{HERE}/mlflow.db"
        "  (the UI needs `pip install mlflow`)\n"
        "  why rerun?:  flexlock diff results/evaluate\n"
        "Run the demo again: finished stages are skipped."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
