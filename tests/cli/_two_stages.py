"""Two stage scripts shared by the reproduce and travel tests: prepare, then train on it."""

PREPARE = """
import attrs
from pathlib import Path
from flexlock.cli import clicfg


@attrs.define
class Config:
    raw: str = "${runlock_data:data/raw.csv}"
    save_dir: str = "results/prepare"


@clicfg
def main(cfg: Config) -> None:
    Path(cfg.save_dir, "clean.csv").write_text(Path(cfg.raw).read_text().upper())


if __name__ == "__main__":
    main()
"""

TRAIN = """
import attrs
from pathlib import Path
from flexlock.cli import clicfg


@attrs.define
class Config:
    c: float = 1.0
    prepared: str = "${runlock_prev:results/prepare}"
    save_dir: str = "results/train"


@clicfg
def main(cfg: Config) -> None:
    text = Path(cfg.prepared, "clean.csv").read_text()
    Path(cfg.save_dir, "model.txt").write_text(f"{cfg.c} {len(text)}\\n")


if __name__ == "__main__":
    main()
"""
