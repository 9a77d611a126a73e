"""Two real users share a results folder: B reads, lists, verifies and diffs A's runs.

The users are created here (useradd) and each command runs as one of them through
`setpriv`, so file modes are checked by the kernel, not by flexlock. Needs root; the
interpreter must be reachable by other users (`.ci/run` makes /root traversable).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._helpers import require_service

GROUP = "flexlock-team"
USERS = ("flexlock-alice", "flexlock-bob")

SCRIPT = """
import attrs
from pathlib import Path
from flexlock.cli import clicfg


@attrs.define
class Config:
    param: int = 1
    save_dir: str = "results/run"


@clicfg
def main(cfg: Config) -> None:
    Path(cfg.save_dir, "model.txt").write_text(f"model {cfg.param}\\n")


if __name__ == "__main__":
    main()
"""


def _ids(name: str) -> tuple[int, int]:
    import grp
    import pwd

    return pwd.getpwnam(name).pw_uid, grp.getgrnam(GROUP).gr_gid


@pytest.fixture(scope="module")
def team() -> None:
    """The group and its two users, created once (idempotent: kept for later runs)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("useradd") is None:
        require_service(False, "two-user tests need root, useradd and setpriv (util-linux)")
    subprocess.run(["groupadd", "-f", GROUP], check=True)
    for user in USERS:
        known = subprocess.run(["id", "-u", user], capture_output=True, check=False)
        if known.returncode != 0:
            subprocess.run(
                ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", GROUP, user],
                check=True,
            )
    reach = _as(USERS[1], [sys.executable, "-c", "import flexlock.cli"], Path("/"), umask=0o022)
    require_service(
        reach.returncode == 0,
        f"{sys.executable} is not usable by other users ({reach.stderr.strip()[-200:]}); "
        "make its parent directories traversable (chmod o+x /root), as .ci/run does",
    )


@pytest.fixture
def shared(team: None) -> Iterator[Path]:
    """A group directory, setgid and group-writable, outside root's private pytest tmp."""
    import grp

    folder = Path(tempfile.mkdtemp(prefix="flexlock-shared-", dir="/tmp"))
    os.chown(folder, -1, grp.getgrnam(GROUP).gr_gid)
    folder.chmod(0o2775)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _as(user: str, argv: list[str], cwd: Path, *, umask: int) -> subprocess.CompletedProcess[str]:
    uid, gid = _ids(user)
    home = Path(tempfile.gettempdir()) / f"{user}-home"
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(home),
        "FLEXLOCK_CACHE_DIR": str(home / "cache"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        # A colleague's checkout is not trusted by git until said so (safe.directory).
        "GIT_CONFIG_COUNT": "4",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": "*",
        "GIT_CONFIG_KEY_1": "user.name",
        "GIT_CONFIG_VALUE_1": user,
        "GIT_CONFIG_KEY_2": "user.email",
        "GIT_CONFIG_VALUE_2": f"{user}@example.com",
        "GIT_CONFIG_KEY_3": "commit.gpgsign",
        "GIT_CONFIG_VALUE_3": "false",
    }
    command = [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        "--init-groups",
        "sh",
        "-c",
        f'umask {umask:03o}; mkdir -p "$HOME"; exec "$@"',
        "sh",
        *argv,
    ]
    return subprocess.run(
        command,
        cwd=cwd,
        env={**env, "TERM": "dumb"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _project(shared: Path, umask: int) -> Path:
    """Alice's git project in the shared folder (a group-shared repository)."""
    alice = USERS[0]
    project = shared / "proj"
    steps = [
        ["git", "init", "-q", "--shared=group", "-b", "main", str(project)],
    ]
    for step in steps:
        done = _as(alice, step, shared, umask=umask)
        assert 0 == done.returncode, done.stderr
    # Written by alice, so every file is hers.
    write = "import sys; open(sys.argv[1], 'w').write(sys.argv[2])"
    for name, text in {"process.py": SCRIPT, ".gitignore": "results/\n"}.items():
        done = _as(alice, [sys.executable, "-c", write, name, text], project, umask=umask)
        assert 0 == done.returncode, done.stderr
    for step in (["git", "add", "."], ["git", "commit", "-q", "-m", "script"]):
        done = _as(alice, step, project, umask=umask)
        assert 0 == done.returncode, done.stderr
    return project


def test_with_umask_022_a_colleague_reads_lists_verifies_and_diffs_the_runs(
    shared: Path,
) -> None:
    alice, bob = USERS
    project = _project(shared, umask=0o022)
    for param in ("1", "2"):
        ran = _as(
            alice,
            [
                sys.executable,
                "process.py",
                "-o",
                "param",
                param,
                "-o",
                "save_dir",
                f"results/p{param}",
            ],
            project,
            umask=0o022,
        )
        assert 0 == ran.returncode, ran.stderr
    flexlock = str(Path(sys.executable).parent / "flexlock")
    listed = _as(bob, [flexlock, "ls", "results"], project, umask=0o022)
    assert (0, "") == (listed.returncode, listed.stderr), listed.stderr
    assert "results/p1" in listed.stdout
    for argv in (
        ["verify", "results/p1"],
        ["diff", "results/p1"],
        ["diff", "results/p1", "results/p2"],
    ):
        done = _as(bob, [flexlock, *argv], project, umask=0o022)
        assert 0 == done.returncode, (argv, done.stdout, done.stderr)
    sheet = project / "results" / "p1" / "run.lock"
    assert 0o644 == sheet.stat().st_mode & 0o777


def test_with_umask_002_in_a_group_folder_a_colleague_adds_runs_beside(shared: Path) -> None:
    alice, bob = USERS
    project = _project(shared, umask=0o002)
    first = _as(
        alice, [sys.executable, "process.py", "-o", "save_dir", "results/a"], project, umask=0o002
    )
    assert 0 == first.returncode, first.stderr
    second = _as(
        bob,
        [sys.executable, "process.py", "-o", "param", "2", "-o", "save_dir", "results/b"],
        project,
        umask=0o002,
    )
    assert 0 == second.returncode, second.stderr
    flexlock = str(Path(sys.executable).parent / "flexlock")
    for user in (alice, bob):
        for run in ("results/a", "results/b"):
            done = _as(user, [flexlock, "verify", run], project, umask=0o002)
            assert 0 == done.returncode, (user, run, done.stdout, done.stderr)
    state = project / "results" / "b" / ".flexlock"
    assert 0o2775 == (project / "results").stat().st_mode & 0o7777
    assert 0o664 == (project / "results" / "b" / "run.lock").stat().st_mode & 0o777
    assert 0o775 == state.stat().st_mode & 0o777
