"""pull restores a project you can work in: real runs, a real bare git remote, a real rclone remote.

A three-stage pipeline (two upstream runs, fan-in) is recorded by a real script with
`runlock`, pushed, the original project deleted, and pulled into a new path. There,
`flexlock verify` passes and re-running the script with the recorded argv gives the
identical id.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from flexlock.core import ConfigError, load
from tests._helpers import git, has_executable, require_service
from tests.cli._pull_pipeline import make_pipeline

pytestmark = pytest.mark.rclone


@pytest.fixture(autouse=True)
def _rclone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_service(has_executable("rclone"), "rclone is not installed (apt-get install rclone)")
    monkeypatch.setenv("RCLONE_CONFIG_STORE_TYPE", "local")
    monkeypatch.setenv("RCLONE_CONFIG", str(tmp_path / "rclone.conf"))


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = make_pipeline(tmp_path)
    monkeypatch.chdir(tmp_path)
    return work


def _push_and_forget(work: Path, remote: str) -> str:
    from flexlock.cli._push import push

    runs = push([work / "results/train"], data_remote=remote, progress=False, report=lambda _: None)
    shutil.rmtree(work)
    return runs[-1].tag


def test_pulled_project_verifies_and_rerun_gives_the_same_id(
    pipeline: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flexlock.cli._main import main

    recorded = load(pipeline / "results/train")
    prepare = load(pipeline / "results/prepare_a")
    remote = f"store:{tmp_path}/remote"
    tag = _push_and_forget(pipeline, remote)

    into = tmp_path / "elsewhere" / "project"
    assert 0 == main(
        ["pull", tag[len("flexlock/sha256-") :][:10], "--data-remote", remote, "--into", str(into)]
    )
    out = capsys.readouterr().out
    assert (into / ".git").is_dir()
    assert (into / "stage.py").read_text().endswith("# tuned\n")
    assert "HEAD" == git(into, "rev-parse", "--abbrev-ref", "HEAD")  # detached at the tag
    assert git(into, "rev-parse", "HEAD") == git(into, "rev-parse", f"refs/tags/{tag}")
    assert (into / "data/raw.csv").read_text() == "a,b\n1,2\n"

    # The upstream runs' code differs: their own checkout, named in pull's output.
    upstream_code = into / ".flexlock/code" / ("sha256-" + prepare.id.partition(":")[2])
    assert prepare.code["."].tree == git(upstream_code, "rev-parse", "HEAD^{tree}")
    assert f"code of {tag} (.): .\n" in out
    # prepare_b ran the same code as prepare_a: one checkout, shared (and said so).
    assert f"{upstream_code.relative_to(into)} (shared)" in out
    assert "" == git(into, "status", "--porcelain")  # nothing pull added shows in the repo

    monkeypatch.chdir(into)
    assert 0 == main(["verify", "results/train"])
    # The upstream runs find their own checkout (.flexlock/repos.json beside each sheet).
    assert 0 == main(["verify", "--recursive", "results/train"])
    assert 0 == main(["verify", "results/prepare_a"])
    capsys.readouterr()

    argv = recorded.env.argv if recorded.env else ()
    subprocess.run([sys.executable, *argv], cwd=into, check=True, capture_output=True)
    assert recorded.id == load(into / "results/train").id
    rerun = load(into / "results/train")
    assert recorded.outputs is not None
    assert rerun.outputs is not None
    assert {k: o.hash for k, o in recorded.outputs.items()} == {
        k: o.hash for k, o in rerun.outputs.items()
    }


def test_no_url_for_a_repo_is_exit_2_a_failed_clone_4_unless_no_code(
    pipeline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flexlock.cli._main import main
    from flexlock.cli._transfer import Manifest

    remote = f"store:{tmp_path}/remote"
    tag = _push_and_forget(pipeline, remote)
    # Sheets with `remote: null` (origin added after the runs; not part of the id) and
    # manifests without the pushed URL.
    for manifest_file in (tmp_path / "remote").rglob("flexlock-manifest.json"):
        manifest = Manifest.loads(manifest_file.read_text(), source="test")
        manifest_file.write_text(attrs.evolve(manifest, repos={}).dumps())
    for sheet in (tmp_path / "remote").rglob("run.lock"):
        sheet.write_text(re.sub(r"(?m)^(\s*)remote: .*$", r"\1remote: null", sheet.read_text()))
    into = tmp_path / "r"
    assert 2 == main(["pull", tag, "--data-remote", remote, "--into", str(into)])
    assert "no git URL for repo '.'" in capsys.readouterr().err
    assert not into.exists()
    failing = ["--repo", "file:///nowhere/x.git"]
    assert 4 == main(["pull", tag, "--data-remote", remote, "--into", str(into), *failing])
    assert not into.exists()
    assert 0 == main(["pull", tag, "--data-remote", remote, "--into", str(into), "--no-code"])
    assert (into / "results/train/run.lock").is_file()
    assert not (into / ".git").exists()


def test_repo_outside_the_working_directory_is_refused() -> None:
    from flexlock.cli._pull_layout import repo_place

    assert Path() == repo_place(".")
    assert Path("lib") == repo_place("./lib")
    with pytest.raises(ConfigError, match=r"outside the run's working directory.*--no-code"):
        repo_place("../lib")
