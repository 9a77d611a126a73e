"""Stage 3: pick the best trained model and write a report; consumes every train run."""

from __future__ import annotations

import json
from pathlib import Path

import attrs

from flexlock.cli import clicfg
from flexlock.core import runlock, unsafe_debug


@attrs.define
class Config:
    train_root: str = "results/train"
    save_dir: str = "results/evaluate"


# With FLEXLOCK_DEBUG=1, a failure keeps main's variables: in IPython
# (`import evaluate; evaluate.main()`) they land in your session, in a plain
# `python evaluate.py` pdb opens at the failing line.
@unsafe_debug
@clicfg(config_class=Config)
def main(cfg: Config) -> None:
    train_dirs = sorted(p.parent for p in Path(cfg.train_root).glob("*/run.lock"))
    if not train_dirs:
        raise FileNotFoundError(f"no trained models under {cfg.train_root}: run train.py first")
    # An explicit runlock() inside main amends the sheet the wrapper started:
    # every train run becomes an upstream run of this evaluation.
    runlock(prevs=train_dirs)
    models = {d.name: json.loads((d / "model.json").read_text()) for d in train_dirs}
    best = min(models, key=lambda name: models[name]["train_mse"])
    report = {"best": best, "models": models}
    Path(cfg.save_dir, "report.json").write_text(json.dumps(report, indent=1))
    print(f"evaluate: best of {len(models)} models is {best} (mse {models[best]['train_mse']:.4f})")


if __name__ == "__main__":
    main(Config())
