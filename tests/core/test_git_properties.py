"""Property: a working tree captured, then checked out from its snapshot, comes back exactly."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from flexlock.core import capture_repo
from tests._helpers import git
from tests.core.test_git import user_state

# A small namespace of paths, so that random operations collide: a file becomes a
# directory, a directory a symlink, a tracked file is deleted and re-created...
PATHS = [
    "a.txt", "b.sh", "d", "d/c.txt", "d/e/f.txt", "link", "new/g.txt", "x.log", "keep.log",
    "with space.txt", "ünïcödé/ñ.txt",
]  # fmt: skip
LINK_TARGETS = ["a.txt", "d", "missing", "../outside", "d/c.txt"]
IGNORE_RULES = ["*.log", "d/", "new/", "*.txt\n!a.txt", "!keep.log", ""]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.sampled_from(PATHS), st.binary(max_size=64)),
        st.tuples(st.just("delete"), st.sampled_from(PATHS)),
        st.tuples(st.just("symlink"), st.sampled_from(PATHS), st.sampled_from(LINK_TARGETS)),
        st.tuples(st.just("chmod"), st.sampled_from(PATHS), st.booleans()),
        st.tuples(st.just("stage"), st.sampled_from(PATHS)),
        st.tuples(st.just("ignore"), st.sampled_from(IGNORE_RULES)),
        st.tuples(st.just("commit"), st.just("")),
    ),
    max_size=12,
)


@contextmanager
def fresh_repo() -> Iterator[Path]:
    """A committed repo with an ignore rule and a tracked-but-ignored file."""
    with tempfile.TemporaryDirectory(prefix="flexlock-prop-") as temp:
        repo = Path(temp) / "repo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        for name, text in {
            ".gitignore": "*.log\n",
            "a.txt": "a\n",
            "b.sh": "#!/bin/sh\n",
            "d/c.txt": "c\n",
            "d/e/f.txt": "f\n",
            "keep.log": "tracked although ignored\n",
        }.items():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(text)
        git(repo, "add", "-f", ".")
        git(repo, "commit", "-q", "-m", "base")
        yield repo


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _make_room(repo: Path, relative: str) -> Path:
    """Clear whatever stands where `relative` (and its parent directories) must go."""
    path = repo / relative
    for parent in reversed(path.relative_to(repo).parents[:-1]):
        where = repo / parent
        if where.is_symlink() or (where.exists() and not where.is_dir()):
            where.unlink()
        where.mkdir(exist_ok=True)
    _remove(path)
    return path


def apply(repo: Path, operation: tuple[object, ...]) -> None:
    kind, relative = operation[0], str(operation[1])
    path = repo / relative
    if kind == "write":
        _make_room(repo, relative).write_bytes(bytes(operation[2]))  # type: ignore[call-overload]
    elif kind == "symlink":
        _make_room(repo, relative).symlink_to(str(operation[2]))
    elif kind == "delete":
        _remove(path)
    elif kind == "chmod" and path.is_file() and not path.is_symlink():
        path.chmod(0o755 if operation[2] else 0o644)
    elif kind == "stage":  # the user's own `git add`, before the capture
        subprocess.run(
            ["git", "add", "-A", "--", relative], cwd=repo, capture_output=True, check=False
        )
    elif kind == "ignore":
        (repo / ".gitignore").write_text(f"{relative}\n")
    elif kind == "commit":  # moves HEAD: the snapshot's parent changes
        subprocess.run(
            ["git", "commit", "-q", "-m", "step"], cwd=repo, capture_output=True, check=False
        )


def working_files(root: Path, leave_out: set[str]) -> dict[str, tuple[str, bytes]]:
    """Map each file and symlink (not directory) to its kind and content or target."""
    found: dict[str, tuple[str, bytes]] = {}
    for directory, dirs, files in os.walk(root):
        linked_dirs = [d for d in dirs if Path(directory, d).is_symlink()]  # not walked into
        dirs[:] = [d for d in dirs if d != ".git" and d not in linked_dirs]
        names = files + linked_dirs
        for name in set(names) - {".git"}:
            path = Path(directory, name)
            relative = path.relative_to(root).as_posix()
            if relative in leave_out:
                continue
            if path.is_symlink():
                found[relative] = ("link", os.fsencode(path.readlink()))
            else:
                executable = bool(path.stat().st_mode & stat.S_IXUSR)
                found[relative] = ("exec" if executable else "file", path.read_bytes())
    return found


def ignored_files(repo: Path) -> set[str]:
    listing = git(repo, "ls-files", "-z", "--others", "--ignored", "--exclude-standard")
    return set(filter(None, listing.split("\0")))


@settings(max_examples=25, deadline=None)
@given(operations)
def test_snapshot_checkout_reproduces_the_working_tree(ops: list[tuple[object, ...]]) -> None:
    with fresh_repo() as repo:
        for operation in ops:
            apply(repo, operation)
        expected = working_files(repo, ignored_files(repo))
        before = user_state(repo)

        record = capture_repo(repo)

        assert before == user_state(repo)
        checkout = repo.parent / "checkout"
        git(repo, "worktree", "add", "-q", "--detach", str(checkout), record.snapshot or "")
        try:
            assert expected == working_files(checkout, set())
        finally:
            git(repo, "worktree", "remove", "--force", str(checkout))


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=40))
def test_snapshot_ref_is_always_a_valid_ref_name(run_id: str) -> None:
    from flexlock.core import GitError
    from flexlock.core._git_snapshot import snapshot_ref

    try:
        ref = snapshot_ref(run_id)
    except GitError:
        return  # nothing usable in the id: refused before any ref exists
    check = subprocess.run(["git", "check-ref-format", ref], capture_output=True, check=False)
    assert 0 == check.returncode, ref
