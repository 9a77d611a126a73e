"""Issue 20: secrets in defaults, a config file, -o, --sweep and argv never reach a byte.

A task list with one failing task runs as a real program, its sheets are logged to
a real `mlflow server` on 127.0.0.1 with `flexlock mlflow log`, then every file
flexlock wrote (results, logs, the server's SQLite database and artifact store) and
everything it printed is searched for each secret value.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.needs_mlflow, pytest.mark.server, pytest.mark.slow]

SECRETS = {
    "default": "DefaultPw7781",
    "config_file": "FilePw55219",
    "override": "OverrideKey9130",
    "sweep_a": "SweepTokA4410",
    "sweep_b": "SweepTokB4411",
    "argv_url": "ArgvUrlPw3370",
}

SCRIPT = f"""
import attrs
from flexlock.cli import clicfg


@attrs.define
class Config:
    db_url: str = "postgres://me:{SECRETS["default"]}@db.example.org/runs"
    password: str = ""
    api_key: str = ""
    hf_token: str = ""
    mirror: str = ""
    lr: int = 1
    save_dir: str = "results/train"


@clicfg
def main(cfg: Config) -> None:
    if cfg.lr == 2:
        raise PermissionError(f"login failed for {{cfg.db_url}} with {{cfg.password!r}} "
                              f"and {{cfg.api_key}} / {{cfg.hf_token}} via {{cfg.mirror}}")


if __name__ == "__main__":
    main()
"""


def _grep(root: Path, secrets: list[str], own: tuple[str, ...] = ()) -> list[str]:
    """Every file or name under `root` holding a secret, but the user's own files `own`."""
    found = []
    for path in root.rglob("*"):
        if path.name in own:
            continue
        if any(secret in str(path) for secret in secrets):
            found.append(f"name: {path}")
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return found


def test_no_secret_reaches_results_logs_mlflow_or_output(
    server_uri: str,
    experiment_name: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text(textwrap.dedent(SCRIPT))
    (work / "conf.yml").write_text(f"password: {SECRETS['config_file']}\n")
    env = {**os.environ, "MLFLOW_TRACKING_URI": server_uri}
    run = subprocess.run(
        [
            sys.executable, "train.py", "--config", "conf.yml",
            "-o", "api_key", SECRETS["override"],
            "-o", "mirror", f"https://me:{SECRETS['argv_url']}@mirror.example.org/x",
            "--sweep", f"hf_token={SECRETS['sweep_a']},{SECRETS['sweep_b']}",
            "--sweep", "lr=1,2",
        ],
        cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert 1 == run.returncode, run.stderr
    logged = subprocess.run(
        [
            str(Path(sys.executable).with_name("flexlock")), "mlflow", "log", "--any-status",
            "--experiment", experiment_name, "results/train/*",
        ],
        cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert "4/4 logged" in logged.stdout + logged.stderr, logged.stdout + logged.stderr
    secrets = list(SECRETS.values())
    # the session server's database and artifact store (tests/mlflow/conftest.py)
    server_dirs = sorted(tmp_path_factory.getbasetemp().glob("mlflow-server*"))
    assert server_dirs
    output = run.stdout + run.stderr + logged.stdout + logged.stderr
    assert ([], []) == (
        _grep(work, secrets, own=("train.py", "conf.yml"))
        + [leak for root in server_dirs for leak in _grep(root, secrets)],
        [s for s in secrets if s in output],
    )
