"""pull against a hostile remote: every attack is refused, `--into` and the store left unchanged.

Real runs (a script using `runlock`), a real bare git remote and a real rclone
`local` remote; the attacker edits the remote's files, and keeps the remote's
own manifest consistent with the edit wherever that is possible.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from flexlock.core import load
from tests._helpers import has_executable, require_service
from tests.cli._pull_pipeline import make_pipeline

pytestmark = pytest.mark.rclone


@pytest.fixture(autouse=True)
def _rclone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_service(has_executable("rclone"), "rclone is not installed (apt-get install rclone)")
    monkeypatch.setenv("RCLONE_CONFIG_STORE_TYPE", "local")
    monkeypatch.setenv("RCLONE_CONFIG", str(tmp_path / "rclone.conf"))


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The pipeline pushed once (to a local directory); each test works on its own copy."""
    from flexlock.cli._push import push

    root = tmp_path_factory.mktemp("pushed")
    work = make_pipeline(root)
    runs = push(
        [work / "results/train"],
        data_remote=str(root / "remote"),
        progress=False,
        report=lambda _: None,
    )
    return root, {run.lock.save_dir or "": run.tag for run in runs}


@pytest.fixture
def remote(pushed: tuple[Path, dict[str, str]], tmp_path: Path) -> Path:
    root, _tags = pushed
    copy = tmp_path / "remote"
    shutil.copytree(root / "remote", copy, symlinks=True)
    return copy


@pytest.fixture
def tags(pushed: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return pushed[1]


def _pull(tag: str, remote: Path, into: Path, *extra: str) -> int:
    from flexlock.cli._main import main

    return main(["pull", tag, "--data-remote", str(remote), "--into", str(into), *extra])


def _listing(root: Path) -> dict[str, tuple[int, str, str]]:
    """Every entry under `root`: size, sha256 (or link target) and mode, for before/after."""
    found = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        if path.is_symlink():
            content = "-> " + str(path.readlink())
        elif path.is_file():
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = "dir"
        found[path.relative_to(root).as_posix()] = (stat.st_size, content, oct(stat.st_mode))
    return found


def _edit_manifest(folder: Path, rel: str) -> None:
    """Make the remote's manifest agree with the (tampered) file `rel` of `folder`."""
    manifest_file = folder / "flexlock-manifest.json"
    manifest = json.loads(manifest_file.read_text())
    data = (folder / rel).read_bytes()
    manifest["files"][rel] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest_file.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _populated_into(tmp_path: Path) -> Path:
    into = tmp_path / "into"
    (into / "notes").mkdir(parents=True)
    (into / "notes" / "mine.txt").write_text("my own notes\n")
    return into


@pytest.mark.parametrize(
    "case",
    [
        ("results/prepare_a", "data/0/raw.csv", "data data/raw.csv"),
        ("results/prepare_b", "data/0/1.txt", "data data/images"),
        ("results/train", "run/out.txt", "output out.txt"),
    ],
)
def test_file_and_manifest_tampered_together_is_exit_3_naming_it(
    remote: Path,
    tags: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, str, str],
) -> None:
    run, rel, named = case
    folder = remote / tags[run]
    (folder / rel).write_text("tampered\n")
    _edit_manifest(folder, rel)
    into = _populated_into(tmp_path)
    before = _listing(into)

    assert 3 == _pull(tags["results/train"], remote, into, "--merge")
    assert named in capsys.readouterr().err
    assert before == _listing(into)


def test_id_changed_in_run_lock_and_manifest_is_exit_3(
    remote: Path, tags: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = remote / tags["results/train"]
    real_id = load(folder / "run.lock").id
    fake_id = real_id[:-1] + ("0" if real_id[-1] != "0" else "1")
    for name in ("run.lock", "flexlock-manifest.json"):
        (folder / name).write_text((folder / name).read_text().replace(real_id, fake_id))
    into = tmp_path / "new" / "into"

    assert 3 == _pull(tags["results/train"], remote, into)
    err = capsys.readouterr().err
    assert fake_id in err
    assert "not the id the tag names" in err
    assert not (tmp_path / "new").exists()  # every directory pull created is gone again


def test_sheet_edited_under_its_own_id_is_exit_3(
    remote: Path, tags: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = remote / tags["results/train"] / "run.lock"
    sheet.write_text(sheet.read_text().replace("name: train", "name: evil", 1))
    assert 3 == _pull(tags["results/train"], remote, tmp_path / "into")
    assert "hash to" in capsys.readouterr().err
    assert not (tmp_path / "into").exists()


def test_embedded_upstream_sheet_edited_is_exit_3(
    remote: Path, tags: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The upstream's config inside the downstream sheet: not part of the downstream's id.
    sheet = remote / tags["results/train"] / "run.lock"
    text = sheet.read_text()
    assert "name: prepare_a" in text
    sheet.write_text(text.replace("name: prepare_a", "name: evil", 1))
    assert 3 == _pull(tags["results/train"], remote, tmp_path / "into")
    assert "upstream" in capsys.readouterr().err


def test_failed_sheet_is_refused_unless_allow_failed(
    remote: Path, tags: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = remote / tags["results/train"] / "run.lock"
    sheet.write_text(re.sub(r"(?m)^status: succeeded$", "status: failed", sheet.read_text()))
    assert 2 == _pull(tags["results/train"], remote, tmp_path / "into")
    assert "--allow-failed" in capsys.readouterr().err
    assert not (tmp_path / "into").exists()
    assert 0 == _pull(tags["results/train"], remote, tmp_path / "into", "--allow-failed")


@pytest.mark.parametrize("where", ["results/train/out.txt", "stage.py"])
def test_a_conflicting_file_leaves_into_byte_identical(
    remote: Path,
    tags: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    # Most files already there and identical (an earlier pull), one differs: nothing moves.
    into = tmp_path / "into"
    assert 0 == _pull(tags["results/train"], remote, into)
    (into / where).write_text("my local edit\n")
    shutil.rmtree(into / "results/prepare_b")
    before = _listing(into)
    capsys.readouterr()

    assert 2 == _pull(tags["results/train"], remote, into, "--merge")
    assert where in capsys.readouterr().err
    assert before == _listing(into)
    assert [] == [p for p in into.iterdir() if p.name.startswith(".flexlock-pull-")]


def test_non_empty_into_is_refused_without_merge(
    remote: Path, tags: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    into = _populated_into(tmp_path)
    before = _listing(into)
    assert 2 == _pull(tags["results/train"], remote, into)
    assert "--merge" in capsys.readouterr().err
    assert before == _listing(into)
    assert 0 == _pull(tags["results/train"], remote, into, "--merge")
    assert (into / "notes/mine.txt").read_text() == "my own notes\n"


def test_symlink_in_the_store_leading_outside_is_refused_and_nothing_outside_changes(
    remote: Path, tags: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # data/0 of prepare_b (the images) replaced by a link to an identical copy outside.
    outside = tmp_path / "outside"
    folder = remote / tags["results/prepare_b"] / "data" / "0"
    shutil.copytree(folder, outside)
    shutil.rmtree(folder)
    folder.symlink_to(outside, target_is_directory=True)
    before = _listing(outside)
    into = _populated_into(tmp_path)
    into_before = _listing(into)

    assert 3 == _pull(tags["results/train"], remote, into, "--symlink", "--merge")
    assert "leads outside the store" in capsys.readouterr().err
    assert before == _listing(outside)
    assert into_before == _listing(into)


def test_tag_prefix_resolves_or_names_the_candidates(
    remote: Path, tags: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = tags["results/train"]
    hex_id = tag.removeprefix("flexlock/sha256-")
    twin = remote / "flexlock" / ("sha256-" + hex_id[:8] + "f" * (len(hex_id) - 8))
    assert not twin.exists()
    twin.mkdir()
    assert 2 == _pull(hex_id[:8], remote, tmp_path / "a")
    err = capsys.readouterr().err
    assert "ambiguous" in err
    assert tag in err
    assert 2 == _pull("0000" if not hex_id.startswith("0000") else "ffff", remote, tmp_path / "b")
    assert "not found" in capsys.readouterr().err
    assert 0 == _pull(hex_id[:20], remote, tmp_path / "c")


def test_debug_data_on_the_remote_is_never_restored(
    remote: Path, tags: dict[str, str], tmp_path: Path
) -> None:
    folder = remote / tags["results/train"]
    pickle = folder / "run/.flexlock/debug/locals.pkl"
    pickle.parent.mkdir(parents=True)
    pickle.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    _edit_manifest(folder, "run/.flexlock/debug/locals.pkl")
    into = tmp_path / "into"
    assert 0 == _pull(tags["results/train"], remote, into)
    assert not (into / "results/train/.flexlock/debug").exists()


def test_a_file_the_sheet_does_not_record_is_refused(
    remote: Path, tags: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = remote / tags["results/train"]
    (folder / "run/evil.py").write_text("import os\n")
    _edit_manifest(folder, "run/evil.py")
    assert 3 == _pull(tags["results/train"], remote, tmp_path / "new" / "into")
    assert "evil.py" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # every directory pull created is gone again


def test_debug_shell_refuses_pickles_written_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from flexlock.cli._main import main
    from flexlock.core import save_failure_locals

    def fail() -> None:
        secret = "x"  # the saved local
        raise ValueError(secret)

    try:
        fail()
    except ValueError as error:
        monkeypatch.setenv("FLEXLOCK_CACHE_DIR", str(tmp_path / "elsewhere"))
        save_failure_locals(error, tmp_path / "run")
    monkeypatch.setenv("FLEXLOCK_CACHE_DIR", str(tmp_path / "here"))
    assert 2 == main(["debug", str(tmp_path / "run"), "--shell"])
    err = capsys.readouterr().err
    assert "arbitrary code" in err
    assert "--trust-pickles" in err
    assert 0 == main(["debug", str(tmp_path / "run")])  # the index (JSON) is still shown
