"""Stage 1: generate a synthetic regression data set (y = 3x - 2 + noise) as CSV."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import attrs

from flexlock.cli import clicfg


@attrs.define
class Config:
    n_samples: int = attrs.field(default=400, metadata={"help": "rows to generate"})
    noise: float = attrs.field(default=0.5, metadata={"help": "std of the gaussian noise"})
    seed: int = attrs.field(default=0, metadata={"help": "random seed"})
    save_dir: str = attrs.field(default="results/prepare", metadata={"help": "where the data goes"})


@clicfg(config_class=Config)
def main(cfg: Config) -> None:
    rng = random.Random(cfg.seed)
    out = Path(cfg.save_dir) / "data.csv"
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x", "y"])
        for _ in range(cfg.n_samples):
            x = rng.uniform(-1, 1)
            writer.writerow([f"{x:.6f}", f"{3 * x - 2 + rng.gauss(0, cfg.noise):.6f}"])
    print(f"prepare: wrote {cfg.n_samples} rows to {out}")


if __name__ == "__main__":
    main(Config())
