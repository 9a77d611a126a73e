"""push records usable remotes, keeps debug data home and converges after rclone is killed.

Real components: a bare git remote, rclone with a local remote, and a real rclone
process killed with SIGKILL in the middle of an upload.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flexlock.core import load
from tests._helpers import git
from tests.cli import test_push_pull as shared
from tests.cli.test_push_pull import _pull, _push, _write_run

# The same project (a work repo, its bare origin, prepare -> train) and rclone "store" remote.
project = shared.project
_rclone = shared._rclone

pytestmark = pytest.mark.rclone


def _manifest(remote: Path, tag: str) -> dict:
    return json.loads((remote / tag / "flexlock-manifest.json").read_text())


def test_manifest_records_the_absolute_url_of_a_relative_git_remote(
    project: Path, tmp_path: Path
) -> None:
    git(project, "remote", "set-url", "origin", "../origin.git")
    runs = _push(project, "results/train", remote=f"store:{tmp_path}/remote")
    expected = {".": str((tmp_path / "origin.git").resolve())}
    assert [expected, expected] == [_manifest(tmp_path / "remote", r.tag)["repos"] for r in runs]


def test_recorded_url_clones_from_another_directory(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(project, "remote", "set-url", "origin", "../origin.git")
    runs = _push(project, "results/prepare", remote=f"store:{tmp_path}/remote")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    url = _manifest(tmp_path / "remote", runs[-1].tag)["repos"]["."]
    git(elsewhere, "clone", "-q", url, "clone")
    assert runs[-1].lock.code["."].snapshot == git(elsewhere / "clone", "rev-parse", runs[-1].tag)


def _with_debug_data(project: Path) -> Path:
    debug = project / "results/prepare/.flexlock/debug"
    debug.mkdir(parents=True)
    (debug / "locals.pkl").write_bytes(b"password=hunter2")
    return debug


def test_debug_data_is_not_pushed_by_default(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flexlock.cli._main import main

    _with_debug_data(project)
    remote = tmp_path / "remote"
    assert 0 == main(["push", "results/prepare", "--data-remote", f"store:{remote}"])
    assert [] == list(remote.rglob("locals.pkl"))
    assert [] == [p for p in _manifest(remote, _tags(remote)[0])["files"] if "debug" in p]
    assert "not pushing the debug data" in capsys.readouterr().out


def test_with_debug_pushes_it_and_warns_it_is_unredacted(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flexlock.cli._main import main

    _with_debug_data(project)
    remote = tmp_path / "remote"
    argv = ["push", "results/prepare", "--data-remote", f"store:{remote}", "--with-debug"]
    assert 0 == main(argv)
    [pushed] = list(remote.rglob("locals.pkl"))
    assert b"password=hunter2" == pushed.read_bytes()
    assert "unredacted" in capsys.readouterr().out


def _tags(remote: Path) -> list[str]:
    return [f"flexlock/{p.name}" for p in sorted((remote / "flexlock").iterdir())]


def test_tags_are_pushed_only_after_the_marker(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flexlock.cli._push as push_module

    seen: list[list[Path]] = []
    real_push_tags = push_module.push_tags

    def record(*args: object, **kwargs: object) -> None:
        seen.append(sorted((tmp_path / "remote").rglob("run.lock")))
        real_push_tags(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(push_module, "push_tags", record)
    _push(project, "results/train", remote=f"store:{tmp_path}/remote")
    assert [2] == [len(markers) for markers in seen]


def test_a_tag_without_a_marker_is_finished_by_the_next_push(project: Path, tmp_path: Path) -> None:
    from flexlock.cli._transfer import run_tag

    tag = run_tag(load(project / "results/prepare").id)
    git(project, "push", "-q", "origin", f"HEAD:refs/tags/{tag}")  # a half-done earlier push
    remote = tmp_path / "remote"
    _push(project, "results/prepare", remote=f"store:{remote}")
    assert (remote / tag / "run.lock").is_file()
    assert load(project / "results/prepare") == _pull(tag, f"store:{remote}", tmp_path / "r")


def test_a_truncated_file_left_by_a_killed_push_is_replaced(project: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    runs = _push(project, "results/prepare", remote=f"store:{remote}")
    folder = remote / runs[-1].tag
    (folder / "run.lock").unlink()  # as if the push had been killed during the upload
    (folder / "flexlock-manifest.json").unlink()
    victim = next(folder.rglob("raw.csv"))
    victim.write_bytes(victim.read_bytes()[:3])
    _push(project, "results/prepare", remote=f"store:{remote}")
    assert (project / "data/raw.csv").read_bytes() == victim.read_bytes()


def test_a_complete_remote_is_never_changed(project: Path, tmp_path: Path) -> None:
    from flexlock.core import VerificationError

    remote = tmp_path / "remote"
    runs = _push(project, "results/prepare", remote=f"store:{remote}")
    victim = next((remote / runs[-1].tag).rglob("raw.csv"))
    victim.write_bytes(b"tampered\n")
    with pytest.raises(VerificationError, match=r"complete push.*different data/\d/raw\.csv"):
        _push(project, "results/prepare", remote=f"store:{remote}")
    assert b"tampered\n" == victim.read_bytes()


# -- a real rclone, really killed ------------------------------------------------------

_BIG = 64 << 20  # with --bwlimit 4M the upload would take 16 s; it is killed after ~1 s


def _rclone_children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == parent and cmdline and cmdline[0].endswith(b"rclone") and b"copy" in cmdline:
            found.append(int(entry.name))
    return found


def _kill_rclone_mid_upload(push: subprocess.Popen[str], partial: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if partial.is_file() and 0 < partial.stat().st_size < _BIG:
            children = _rclone_children(push.pid)
            if children:
                for pid in children:
                    os.kill(pid, signal.SIGKILL)
                return
        if push.poll() is not None:
            pytest.fail(f"push ended before rclone could be killed: {push.communicate()}")
        time.sleep(0.05)
    pytest.fail("rclone never started uploading the big file")


def test_push_converges_after_rclone_is_killed_mid_upload(project: Path, tmp_path: Path) -> None:
    save_dir = project / "results/big"
    save_dir.mkdir(parents=True)
    with (save_dir / "model.bin").open("wb") as handle:
        for _ in range(_BIG >> 20):
            handle.write(os.urandom(1 << 20))
    lock = _write_run(project, "results/big", data=[], prevs={})
    from flexlock.cli._transfer import run_tag

    tag = run_tag(lock.id)
    remote = tmp_path / "remote"
    partial = remote / tag / "run/model.bin"
    push = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("flexlock")),
            "push",
            "results/big",
            "--data-remote",
            str(remote),
        ],
        cwd=project,
        env={**os.environ, "RCLONE_BWLIMIT": "4M"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _kill_rclone_mid_upload(push, partial)
    _, stderr = push.communicate(timeout=60)

    assert 4 == push.returncode
    assert "killed by signal 9" in stderr
    assert "Config file" not in stderr
    assert partial.stat().st_size < _BIG  # the killed upload left a truncated final-name file
    assert not (remote / tag / "run.lock").exists()
    assert "" == git(tmp_path / "origin.git", "tag", "--list", tag)

    _push(project, "results/big", remote=str(remote))
    assert load(save_dir) == _pull(tag, str(remote), tmp_path / "restored")
    expected = hashlib.sha256((save_dir / "model.bin").read_bytes()).hexdigest()
    restored = tmp_path / "restored/results/big/model.bin"
    assert expected == hashlib.sha256(restored.read_bytes()).hexdigest()


def test_a_half_written_marker_is_replaced(project: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    runs = _push(project, "results/prepare", remote=f"store:{remote}")
    marker = remote / runs[-1].tag / "run.lock"
    marker.write_bytes(marker.read_bytes()[:40])  # killed while uploading the marker
    _push(project, "results/prepare", remote=f"store:{remote}")
    assert (project / "results/prepare/run.lock").read_bytes() == marker.read_bytes()


def test_a_complete_push_of_another_sheet_with_the_same_id_is_never_replaced(
    project: Path, tmp_path: Path
) -> None:
    import attrs

    from flexlock.core import ConfigError, dump

    remote = tmp_path / "remote"
    runs = _push(project, "results/prepare", remote=f"store:{remote}")
    marker = remote / runs[-1].tag / "run.lock"
    pushed = marker.read_bytes()
    rerun = attrs.evolve(load(project / "results/prepare"), finished="2026-11-28T00:00:00Z")
    dump(rerun, project / "results/prepare/run.lock")  # same inputs, run again: same id
    with pytest.raises(ConfigError, match="re-run with the same inputs"):
        _push(project, "results/prepare", remote=f"store:{remote}")
    assert pushed == marker.read_bytes()
