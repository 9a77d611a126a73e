"""Stage 2: fit y = w x + b by gradient descent; run once per learning rate (a task list)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import attrs

from flexlock.cli import clicfg


@attrs.define
class Optim:
    lr: float = attrs.field(default=0.1, metadata={"help": "learning rate"})
    epochs: int = attrs.field(default=50, metadata={"help": "passes over the data"})


@attrs.define
class Config:
    # The resolvers return the path and register it: the run sheet records the
    # data file's hash and embeds the prepare stage's run.lock as an upstream run.
    data: str = "${runlock_data:results/prepare/data.csv}"
    prepare: str = "${runlock_prev:results/prepare}"
    optim: Optim = attrs.Factory(Optim)
    save_dir: str = "results/train"


def load_rows(path: str) -> list[tuple[float, float]]:
    with Path(path).open(newline="") as handle:
        return [(float(row["x"]), float(row["y"])) for row in csv.DictReader(handle)]


@clicfg(config_class=Config)
def main(cfg: Config) -> None:
    rows = load_rows(cfg.data)
    w = b = 0.0
    for _ in range(cfg.optim.epochs):
        grad_w = sum(2 * (w * x + b - y) * x for x, y in rows) / len(rows)
        grad_b = sum(2 * (w * x + b - y) for x, y in rows) / len(rows)
        w, b = w - cfg.optim.lr * grad_w, b - cfg.optim.lr * grad_b
    mse = sum((w * x + b - y) ** 2 for x, y in rows) / len(rows)
    Path(cfg.save_dir, "model.json").write_text(json.dumps({"w": w, "b": b, "train_mse": mse}))
    print(f"train: lr={cfg.optim.lr} w={w:.3f} b={b:.3f} mse={mse:.4f}")


if __name__ == "__main__":
    main(Config())
