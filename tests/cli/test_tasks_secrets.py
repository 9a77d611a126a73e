"""A task list with secrets: no directory name, sheet, history or message holds one."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from flexlock.cli import clicfg
from flexlock.core import clear_capture_cache

SECRETS = ("S1tokenAlpha", "S2tokenBravo")
RAN: list[str] = []


@attrs.define
class Config:
    token: str = ""
    n: int = 1
    save_dir: str = "results/x"


@clicfg
def login(cfg: Config) -> None:
    RAN.append(cfg.token)
    if cfg.n == 2:
        raise PermissionError(f"server refused token {cfg.token!r}")


@pytest.fixture(autouse=True)
def _forget() -> None:
    RAN.clear()
    clear_capture_cache()


def _leaks(root: Path) -> list[str]:
    found = [str(path) for path in root.rglob("*") if any(s in path.name for s in SECRETS)]
    for path in root.rglob("*"):
        if path.is_file() and any(s.encode() in path.read_bytes() for s in SECRETS):
            found.append(str(path))
    return found


def test_a_secret_sweep_names_directories_by_digest_and_stays_resumable(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == login.cli(["--sweep", f"token={','.join(SECRETS)}"])
    assert ([], sorted(SECRETS)) == (_leaks(workdir), sorted(RAN))
    directories = sorted(path.name for path in (workdir / "results" / "x").iterdir())
    assert all(name.startswith("token=secret-") for name in directories), directories
    RAN.clear()
    assert 0 == login.cli(["--sweep", f"token={','.join(SECRETS)}"])
    output = capsys.readouterr()
    assert ([], True) == (RAN, "2 skipped" in output.err)
    assert not any(s in output.out + output.err for s in SECRETS)


def test_a_failed_task_with_a_secret_override_leaks_it_nowhere(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = login.cli(["--sweep", f"token={SECRETS[0]}", "--sweep", "n=1,2"])
    assert 0 != code
    output = capsys.readouterr()
    assert [] == _leaks(workdir)
    assert not any(s in output.out + output.err for s in SECRETS), output.err


def test_a_failed_single_run_keeps_the_secret_out_of_its_log_and_terminal(
    workdir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A command-line run prints its traceback through the run log (stderr.log and the
    # terminal): the exception's message quotes the token, the traceback must not.
    assert 0 != login.cli([f"token={SECRETS[0]}", "n=2"])
    output = capfd.readouterr()
    assert "PermissionError" in output.err
    assert not any(s in output.out + output.err for s in SECRETS), output.err
    assert [] == _leaks(workdir)
    assert (workdir / "results" / "x" / "stderr.log").is_file()


def test_a_failed_run_without_save_dir_keeps_the_secret_off_the_terminal(
    workdir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # No save_dir: no run log, the traceback is printed by @clicfg itself.
    assert 0 != login.cli([f"token={SECRETS[0]}", "n=2", "save_dir="])
    output = capfd.readouterr()
    assert "PermissionError" in output.err
    assert not any(s in output.out + output.err for s in SECRETS), output.err
    assert [] == _leaks(workdir)
