"""push/pull with real components: a bare git repo as the git remote, rclone with a local remote."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from flexlock.core import (
    EnvRecord,
    FlexLockError,
    GitError,
    PrevRecord,
    RepoRecord,
    RunLock,
    TransferError,
    VerificationError,
    compute_id,
    dump,
    hash_path,
    load,
)
from tests._helpers import git, has_executable, require_service

pytestmark = pytest.mark.rclone


@pytest.fixture(autouse=True)
def _rclone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_service(has_executable("rclone"), "rclone is not installed (apt-get install rclone)")
    # A local-directory remote named "store", configured only through the environment.
    monkeypatch.setenv("RCLONE_CONFIG_STORE_TYPE", "local")
    monkeypatch.setenv("RCLONE_CONFIG", str(tmp_path / "rclone.conf"))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A work repo with an `origin` bare remote, data files, and two runs: prepare -> train."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "commit.gpgsign", "false")
    (work / "process.py").write_text("print('hi')\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "code")
    git(work, "remote", "add", "origin", str(origin))
    monkeypatch.chdir(work)
    (work / "data").mkdir()
    (work / "data" / "raw.csv").write_text("a,b\n1,2\n")
    (work / "data" / "images").mkdir()
    for index in range(3):
        (work / "data" / "images" / f"{index}.txt").write_text(f"image {index}\n")
    prepare = _write_run(work, "results/prepare", data=["data/raw.csv", "data/images"], prevs={})
    _write_run(work, "results/train", data=[], prevs={"results/prepare": prepare})
    return work


def _repo_record(work: Path) -> RepoRecord:
    return RepoRecord(
        root=str(work),
        commit=git(work, "rev-parse", "HEAD"),
        branch="main",
        remote=str(work.parent / "origin.git"),
        dirty=False,
        tree=git(work, "rev-parse", "HEAD^{tree}"),
        snapshot=git(work, "rev-parse", "HEAD"),
    )


def _write_run(
    work: Path,
    save_dir: str,
    *,
    data: list[str],
    prevs: dict[str, RunLock],
    run_id: str | None = None,
) -> RunLock:
    (work / save_dir).mkdir(parents=True, exist_ok=True)
    (work / save_dir / "out.txt").write_text(f"output of {save_dir}\n")
    lock = RunLock(
        id=run_id or "sha256:" + "0" * 64,  # replaced below by the id its fields hash to
        status="succeeded",
        created="2026-11-27T00:00:00Z",
        finished="2026-11-27T00:01:00Z",
        save_dir=save_dir,
        config={"save_dir": save_dir},
        code={".": _repo_record(work)},
        data={path: hash_path(work / path) for path in data},
        prevs={
            path: PrevRecord(id=prev.id, path=f"{path}/run.lock", lock=prev)
            for path, prev in prevs.items()
        },
        env=EnvRecord(
            python="3.11",
            implementation="CPython",
            platform="linux",
            hostname="h",
            user="u",
            cwd=str(work),
        ),
    )
    if run_id is None:
        lock = attrs.evolve(
            lock,
            id=compute_id(
                lock.config,
                {key: repo.tree for key, repo in lock.code.items()},
                {key: record.hash for key, record in lock.data.items()},
                {key: prev.id for key, prev in lock.prevs.items()},
            ),
        )
    dump(lock, work / save_dir / "run.lock")
    return lock


def _push(work: Path, *runs: str, remote: str) -> list:
    from flexlock.cli._push import push

    return push([work / r for r in runs], data_remote=remote, progress=False, report=lambda _: None)


def _pull(tag: str, remote: str, into: Path, **kwargs: object):
    from flexlock.cli._pull import pull

    return pull(tag, data_remote=remote, into=into, report=lambda _: None, **kwargs)


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


def test_push_then_pull_restores_code_data_and_upstream_byte_for_byte(
    project: Path, tmp_path: Path
) -> None:
    remote = f"store:{tmp_path}/remote"
    runs = _push(project, "results/train", remote=remote)
    assert ["results/prepare", "results/train"] == [r.lock.save_dir for r in runs]

    into = tmp_path / "restored"
    lock = _pull(runs[-1].tag, remote, into)

    assert load(project / "results/train") == lock
    assert load(project / "results/prepare") == load(into / "results/prepare")
    # --into is the run's working directory again: code, data and runs where they were.
    assert _files(project) == _files(into)


def test_push_tags_the_snapshot_on_the_git_remote(project: Path, tmp_path: Path) -> None:
    runs = _push(project, "results/train", remote=f"store:{tmp_path}/remote")
    snapshot = git(project, "rev-parse", "HEAD")
    assert snapshot == git(tmp_path / "origin.git", "rev-parse", f"refs/tags/{runs[-1].tag}")


def test_second_push_is_a_no_op(project: Path, tmp_path: Path) -> None:
    remote = f"store:{tmp_path}/remote"
    _push(project, "results/train", remote=remote)
    before = _files(tmp_path / "remote")
    _push(project, "results/train", remote=remote)
    assert before == _files(tmp_path / "remote")


def test_conflicting_remote_tag_is_refused_before_any_upload(project: Path, tmp_path: Path) -> None:
    from flexlock.cli._transfer import run_tag

    tag = run_tag(load(project / "results/prepare").id)
    (project / "other.txt").write_text("x")
    git(project, "add", "other.txt")
    git(project, "commit", "-q", "-m", "other")
    git(project, "push", "-q", "origin", f"HEAD:refs/tags/{tag}")
    with pytest.raises(FlexLockError, match="refusing to overwrite"):
        _push(project, "results/train", remote=f"store:{tmp_path}/remote")
    assert not (tmp_path / "remote").exists()


def test_missing_git_remote_fails_before_data_upload(project: Path, tmp_path: Path) -> None:
    git(project, "remote", "remove", "origin")
    with pytest.raises(FlexLockError, match="no git remote 'origin'"):
        _push(project, "results/train", remote=f"store:{tmp_path}/remote")
    assert not (tmp_path / "remote").exists()


def test_unknown_rclone_remote_is_a_clear_error(project: Path) -> None:
    with pytest.raises(FlexLockError, match="nosuchremote"):
        _push(project, "results/train", remote="nosuchremote:bucket")


def test_interrupted_push_is_never_complete_and_rerun_converges(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flexlock.cli._push as push_module

    remote = f"store:{tmp_path}/remote"

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    # Data is uploaded, the marker and the tags are not: push tags only after the marker.
    monkeypatch.setattr(push_module, "verify_remote", crash)
    with pytest.raises(KeyboardInterrupt):
        _push(project, "results/train", remote=remote)
    assert [] == list((tmp_path / "remote").rglob("run.lock"))
    tag = push_module.run_tag(load(project / "results/train").id)
    with pytest.raises(FlexLockError):
        _pull(tag, remote, tmp_path / "early")
    monkeypatch.undo()
    monkeypatch.setenv("RCLONE_CONFIG_STORE_TYPE", "local")
    _push(project, "results/train", remote=remote)
    assert load(project / "results/train") == _pull(tag, remote, tmp_path / "late")


def test_data_changed_since_the_run_is_refused(project: Path, tmp_path: Path) -> None:
    (project / "data" / "raw.csv").write_text("tampered\n")
    with pytest.raises(FlexLockError, match=r"data/raw\.csv.*changed"):
        _push(project, "results/train", remote=f"store:{tmp_path}/remote")


def test_upstream_changed_since_consumed_is_refused(project: Path) -> None:
    _write_run(
        project, "results/prepare", data=["data/raw.csv"], prevs={}, run_id="sha256:" + "e" * 64
    )
    with pytest.raises(FlexLockError, match="upstream run changed"):
        _push(project, "results/train", remote="store:/nonexistent")


def test_upstream_cycle_is_refused(project: Path) -> None:
    from flexlock.cli._push import resolve_lineage

    a = load(project / "results/train")
    b = load(project / "results/prepare")
    import attrs

    dump(
        attrs.evolve(
            b, prevs={"results/train": PrevRecord(id=a.id, path="results/train/run.lock", lock=a)}
        ),
        project / "results/prepare/run.lock",
    )
    with pytest.raises(FlexLockError, match=r"cycle|changed"):
        resolve_lineage([project / "results/train"])


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_remote_file_is_detected_and_not_moved_into_place(
    project: Path, tmp_path: Path, damage: str
) -> None:
    remote = f"store:{tmp_path}/remote"
    runs = _push(project, "results/prepare", remote=remote)
    victim = next((tmp_path / "remote").rglob("raw.csv"))
    content = bytearray(victim.read_bytes())
    if damage == "flip":
        content[0] ^= 0x01
    else:
        content = content[:3]
    victim.write_bytes(bytes(content))
    into = tmp_path / "restored"
    with pytest.raises(VerificationError, match=r"raw\.csv"):
        _pull(runs[-1].tag, remote, into)
    assert not (into / "data" / "raw.csv").exists()


@pytest.mark.parametrize("bad_path", ["../evil", "/etc/evil", "a//b", "a\\\\b", "run/../../x"])
def test_unsafe_manifest_paths_are_rejected_before_any_write(
    project: Path, tmp_path: Path, bad_path: str
) -> None:
    remote = f"store:{tmp_path}/remote"
    runs = _push(project, "results/prepare", remote=remote)
    manifest = next((tmp_path / "remote").rglob("flexlock-manifest.json"))
    text = manifest.read_text().replace('"run/out.txt"', f'"{bad_path}"')
    manifest.write_text(text)
    into = tmp_path / "restored"
    with pytest.raises(FlexLockError, match="unsafe path"):
        _pull(runs[-1].tag, remote, into)
    assert [] == ([p for p in into.rglob("*") if p.is_file()] if into.exists() else [])


def test_glob_input_comes_back_at_its_own_path(project: Path, tmp_path: Path) -> None:
    (project / "data" / "a1").mkdir()
    (project / "data" / "a1" / "x.csv").write_text("x\n")
    _write_run(project, "results/globbed", data=["data/a*/x.csv"], prevs={})
    remote = f"store:{tmp_path}/remote"
    runs = _push(project, "results/globbed", remote=remote)
    into = tmp_path / "restored"
    _pull(runs[-1].tag, remote, into)
    assert b"x\n" == (into / "data" / "a1" / "x.csv").read_bytes()


def test_symlink_mode_links_into_the_store_without_changing_it(
    project: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store-dir"
    runs = _push(project, "results/prepare", remote=str(store))
    modes = {p: p.stat().st_mode for p in store.rglob("*")}
    into = tmp_path / "linked"
    _pull(runs[-1].tag, str(store), into, symlink=True)
    link = into / "data" / "raw.csv"
    assert link.is_symlink()
    assert link.resolve().is_relative_to(store.resolve())
    assert modes == {p: p.stat().st_mode for p in store.rglob("*")}
    assert (project / "data/raw.csv").read_bytes() == link.read_bytes()


def test_pull_of_unknown_tag_names_the_remote_and_tag(tmp_path: Path) -> None:
    (tmp_path / "remote").mkdir()
    with pytest.raises(FlexLockError, match="flexlock/000000000000 not found"):
        _pull("flexlock/000000000000", f"store:{tmp_path}/remote", tmp_path / "x")


def test_cli_push_and_pull_exit_codes(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flexlock.cli._main import main

    remote = f"store:{tmp_path}/remote"
    assert 0 == main(["push", "results/train", "--data-remote", remote])
    tag = capsys.readouterr().out.split("flexlock pull ")[1].split()[0]
    assert 0 == main(["pull", tag, "--data-remote", remote, "--into", str(tmp_path / "r")])
    assert 2 == main(
        ["pull", "flexlock/ffffffffffff", "--data-remote", remote, "--into", str(tmp_path / "s")]
    )


def test_unreachable_git_remote_is_a_transfer_error_before_any_upload(
    project: Path, tmp_path: Path
) -> None:
    git(project, "remote", "set-url", "origin", "file:///nonexistent/origin.git")
    with pytest.raises(TransferError, match="unreachable") as caught:
        _push(project, "results/train", remote=f"store:{tmp_path}/remote")
    assert isinstance(caught.value, FlexLockError)
    assert not (tmp_path / "remote").exists()


def test_rclone_failure_is_a_transfer_error(project: Path) -> None:
    from flexlock.cli._rclone import RcloneError

    with pytest.raises(RcloneError, match="nosuchremote") as caught:
        _push(project, "results/train", remote="nosuchremote:bucket")
    assert isinstance(caught.value, TransferError)


def test_conflicting_tag_is_a_git_error_not_a_transfer_error(project: Path, tmp_path: Path) -> None:
    from flexlock.cli._transfer import run_tag

    tag = run_tag(load(project / "results/prepare").id)
    git(project, "commit", "-q", "--allow-empty", "-m", "other")
    git(project, "push", "-q", "origin", f"HEAD:refs/tags/{tag}")
    with pytest.raises(GitError) as caught:
        _push(project, "results/train", remote=f"store:{tmp_path}/remote")
    assert not isinstance(caught.value, TransferError)


def test_pull_from_an_unreachable_git_url_is_a_transfer_error(
    project: Path, tmp_path: Path
) -> None:
    remote = f"store:{tmp_path}/remote"
    runs = _push(project, "results/prepare", remote=remote)
    with pytest.raises(TransferError, match="cloning"):
        _pull(runs[-1].tag, remote, tmp_path / "r", repos={"*": "file:///nonexistent/x.git"})


def test_git_inside_a_hook_talks_to_the_recorded_repo(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A git hook exports GIT_DIR/GIT_INDEX_FILE of its own repository; push must ignore them.
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    runs = _push(project, "results/train", remote=f"store:{tmp_path}/remote")
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_INDEX_FILE")
    tagged = git(tmp_path / "origin.git", "rev-parse", f"refs/tags/{runs[-1].tag}")
    assert git(project, "rev-parse", "HEAD") == tagged


def test_cli_exit_codes_transfer_4_verification_3(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flexlock.cli._main import main

    remote = f"store:{tmp_path}/remote"
    git(project, "remote", "set-url", "origin", str(tmp_path / "does-not-exist.git"))
    assert 4 == main(["push", "results/train", "--data-remote", remote])
    assert "unreachable" in capsys.readouterr().err

    git(project, "remote", "set-url", "origin", str(tmp_path / "origin.git"))
    assert 0 == main(["push", "results/prepare", "--data-remote", remote])
    tag = capsys.readouterr().out.split("flexlock pull ")[1].split()[0]
    victim = next((tmp_path / "remote").rglob("raw.csv"))
    victim.write_bytes(b"tampered\n")
    into = tmp_path / "restored"
    assert 3 == main(["pull", tag, "--data-remote", remote, "--into", str(into)])
    assert "do not match" in capsys.readouterr().err
    assert not (into / "data" / "raw.csv").exists()
