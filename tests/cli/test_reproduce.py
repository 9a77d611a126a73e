"""`flexlock reproduce`: real scripts in a real git repo, re-run and compared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from flexlock.core import dump, load
from tests._helpers import git
from tests.cli._two_stages import PREPARE, TRAIN

STAMPED = TRAIN.replace(
    'Path(cfg.save_dir, "model.txt")',
    'import time; Path(cfg.save_dir, "stamp.txt").write_text(str(time.time_ns())); '
    'Path(cfg.save_dir, "model.txt")',
)


def _run(cwd: Path, *argv: str) -> None:
    done = subprocess.run(
        [sys.executable, *argv], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert 0 == done.returncode, done.stderr


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """prepare (reads data/raw.csv) -> train (-o c 2), both committed and run."""
    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "commit.gpgsign", "false")
    (root / "prepare.py").write_text(PREPARE)
    (root / "train.py").write_text(TRAIN)
    (root / "stamped.py").write_text(STAMPED.replace("results/train", "results/stamped"))
    (root / ".gitignore").write_text("results/\n")
    (root / "data").mkdir()
    (root / "data" / "raw.csv").write_text("a,b\n1,2\n")
    (root / "cs.txt").write_text("0.5\n3\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "pipeline")
    _run(root, "prepare.py")
    _run(root, "train.py", "-o", "c", "2")
    monkeypatch.chdir(root)
    return root


def _reproduce(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    from flexlock.cli._main import main

    code = main(["reproduce", *argv])
    return code, capsys.readouterr().out


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_deterministic_two_stage_pipeline_reproduces(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _reproduce(capsys, "results/train", "--upstream")
    assert (0, 2) == (code, out.count(": reproduced"))
    assert "results/prepare: reproduced" in out
    assert "results/train: reproduced" in out


def test_the_original_run_directories_are_byte_identical_afterwards(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {name: _tree(project / "results" / name) for name in ("prepare", "train")}
    assert 0 == _reproduce(capsys, "results/train", "--upstream")[0]
    assert before == {name: _tree(project / "results" / name) for name in ("prepare", "train")}
    reproduced = load(project / "results/train.reproduce-1")
    assert "results/train.reproduce-1" == reproduced.config["save_dir"]


def test_each_reproduction_gets_its_own_save_dir(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == _reproduce(capsys, "results/train")[0]
    assert 0 == _reproduce(capsys, "results/train")[0]
    assert (project / "results/train.reproduce-2/run.lock").is_file()


def test_a_stage_writing_a_timestamp_gives_outputs_differ_naming_the_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(project, "stamped.py")
    code, out = _reproduce(capsys, "results/stamped")
    assert 3 == code
    assert "outputs differ" in out
    assert "stamp.txt: differs" in out
    assert "model.txt" not in out


def test_an_edited_script_could_not_reproduce_naming_the_code_difference(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (project / "train.py").open("a") as handle:
        handle.write("# tuned\n")
    code, out = _reproduce(capsys, "results/train")
    assert 2 == code
    assert "could not reproduce" in out
    assert "code .: changed" in out  # found before running: the edited script never runs
    assert "train.py" in out
    assert not (project / "results/train.reproduce-1").exists()


def test_a_failing_script_could_not_reproduce_with_its_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Fails when results/fail-now exists: git ignores results/, so the code stays the same.
    flaky = PREPARE.replace(
        "def main(cfg: Config) -> None:\n",
        "def main(cfg: Config) -> None:\n"
        "    if Path('results/fail-now').exists():\n"
        "        raise SystemExit('told to fail')\n",
    ).replace("results/prepare", "results/flaky")
    assert flaky != PREPARE
    (project / "flaky.py").write_text(flaky)
    git(project, "add", "flaky.py")
    git(project, "commit", "-q", "-m", "flaky")
    _run(project, "flaky.py")
    (project / "results" / "fail-now").write_text("")
    code, out = _reproduce(capsys, "results/flaky")
    assert 2 == code
    assert "could not reproduce" in out
    assert "the script failed" in out


def test_a_sheet_without_argv_could_not_reproduce(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = load(project / "results/train")
    assert lock.env is not None
    dump(
        attrs.evolve(lock, env=attrs.evolve(lock.env, argv=())), project / "results/train/run.lock"
    )
    code, out = _reproduce(capsys, "results/train")
    assert 2 == code
    assert "records no command" in out


def test_a_task_of_a_parallel_task_list_reproduces_serially(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(project, "train.py", "--tasks", "cs.txt", "--task_to", "c", "--n_jobs", "2")
    tasks = [p.parent for p in (project / "results/train").glob("*/run.lock")]
    [task] = [t for t in tasks if load(t).config["c"] == 3.0]
    code, out = _reproduce(capsys, str(task.relative_to(project)))
    assert 0 == code, out
    assert "--n_jobs" not in out.splitlines()[0]
    assert "-o c=" in out.splitlines()[0]


def test_in_place_replaces_the_run_with_its_reproduction(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = load(project / "results/train")
    assert 0 == _reproduce(capsys, "results/train", "--in-place")[0]
    assert recorded.id == load(project / "results/train").id
    assert not (project / "results/train.reproduce-1").exists()


@pytest.mark.rclone
def test_a_pushed_tag_is_pulled_then_reproduced_elsewhere(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flexlock.cli._main import main
    from tests._helpers import has_executable, require_service

    require_service(has_executable("rclone"), "rclone is not installed (apt-get install rclone)")
    monkeypatch.setenv("RCLONE_CONFIG_STORE_TYPE", "local")
    monkeypatch.setenv("RCLONE_CONFIG", str(tmp_path / "rclone.conf"))
    git(tmp_path, "init", "-q", "--bare", "origin.git")
    git(project, "remote", "add", "origin", "../origin.git")
    remote = f"store:{tmp_path}/remote"
    assert 0 == main(["push", "results/train", "--data-remote", remote])
    tag = capsys.readouterr().out.split("flexlock pull ")[1].split()[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    into = elsewhere / "restored"
    argv = [tag, "--into", str(into), "--data-remote", remote, "--upstream"]
    code, out = _reproduce(capsys, *argv)
    assert 0 == code, out
    assert f"{into}/results/prepare: reproduced" in out  # the pulled one, not the original
    assert f"{into}/results/train: reproduced" in out
    assert (into / "results/train.reproduce-1/model.txt").is_file()


def test_a_command_that_is_not_a_recorded_script_is_never_run(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """env.argv is not part of the identity: a hostile sheet could put any command there."""
    sheet = project / "results" / "train" / "run.lock"
    planted = tmp_path / "planted"
    lock = load(sheet)
    assert lock.env is not None
    evil = attrs.evolve(lock.env, argv=("-c", f"open({str(planted)!r}, 'w').write('pwned')"))
    dump(attrs.evolve(lock, env=evil), sheet)
    code, out = _reproduce(capsys, "results/train")
    assert 2 == code
    assert "is not a Python script: refusing to run it" in out
    assert not planted.exists()
