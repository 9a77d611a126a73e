"""Files and directories flexlock creates get the mode an ordinary open()/mkdir would."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from flexlock.core import runlock, save_failure_locals


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _modes(root: Path) -> dict[str, int]:
    return {
        path.relative_to(root).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in sorted(root.rglob("*"))
    }


def test_sheets_history_inputs_and_manifests_follow_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    for _ in range(2):  # the second run keeps the first sheet in history
        with runlock(
            config={"save_dir": "results/run"},
            repos=[],
            data=["data"],
            packages=False,
            finalize_at_exit=False,
        ):
            pass
    modes = _modes(tmp_path / "results" / "run")
    assert {"run.lock", ".flexlock/inputs.json"} <= set(modes)
    assert any(name.startswith(".flexlock/history/") for name in modes)
    assert any(name.startswith(".flexlock/manifests/") for name in modes)
    expected = {
        name: (0o777 if (tmp_path / "results" / "run" / name).is_dir() else 0o666) & ~umask
        for name in modes
    }
    assert expected == modes


def test_debug_data_follows_the_umask(tmp_path: Path, umask: int) -> None:
    def fails() -> None:
        secret_free = 41
        raise ValueError(secret_free)

    with pytest.raises(ValueError) as caught:
        fails()
    assert save_failure_locals(caught.value, tmp_path) is not None
    modes = _modes(tmp_path)
    assert modes
    assert {
        name: (0o777 if (tmp_path / name).is_dir() else 0o666) & ~umask for name in modes
    } == modes


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory another group needs root")
def test_a_setgid_directory_gives_its_group_to_the_sheet(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    group = 1 if os.getgid() != 1 else 2  # any group but ours
    os.chown(shared, -1, group)
    shared.chmod(0o2775)
    with runlock(
        config={"save_dir": str(shared / "run")},
        repos=[],
        packages=False,
        finalize_at_exit=False,
    ):
        pass
    assert group == (shared / "run" / "run.lock").stat().st_gid
