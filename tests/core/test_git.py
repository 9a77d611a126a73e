"""Code capture with git snapshots: exact trees, user state untouched, clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import NamedTuple

import attrs
import pytest

from flexlock.core import GitError, capture_repo, diff_trees
from flexlock.core._git import find_repo_root, strip_credentials
from flexlock.core._git_snapshot import (
    KEPT_PREFIX,
    REF_PREFIX,
    keep_snapshot,
    save_dirs_file,
    snapshot_ref,
)
from tests._helpers import git

# -- helpers ------------------------------------------------------------------------


class UserState(NamedTuple):
    """Everything of the user's that capture must leave alone."""

    head_file: bytes
    head: str
    index_bytes: bytes
    index_mtime_ns: int
    status: str
    refs: str
    files: dict[str, bytes]


def _files(root: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(root.rglob("*")):
        if ".git" in path.relative_to(root).parts:
            continue
        if path.is_symlink():
            found[path.relative_to(root).as_posix()] = b"-> " + os.fsencode(path.readlink())
        elif path.is_file():
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def _git_dir(repo: Path) -> Path:
    return Path(git(repo, "rev-parse", "--absolute-git-dir"))


def user_state(repo: Path) -> UserState:
    git_dir = _git_dir(repo)
    index = git_dir / "index"
    return UserState(
        head_file=(git_dir / "HEAD").read_bytes(),
        head=git(repo, "rev-parse", "-q", "--verify", "HEAD") if _has_head(repo) else "",
        index_bytes=index.read_bytes() if index.exists() else b"",
        index_mtime_ns=index.stat().st_mtime_ns if index.exists() else 0,
        # --no-optional-locks: our own check must not refresh the index it inspects
        status=git(repo, "--no-optional-locks", "status", "--porcelain=v2", "--branch", "-uall"),
        refs=git(repo, "for-each-ref"),
        files=_files(repo),
    )


def _has_head(repo: Path) -> bool:
    result = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", "HEAD"], cwd=repo, capture_output=True, check=False
    )
    return result.returncode == 0


def tree_files(repo: Path, treeish: str) -> dict[str, tuple[str, str]]:
    """Map path -> (mode, blob) for every entry of a tree, recursively."""
    listing = git(repo, "ls-tree", "-r", "-z", treeish).split("\0")
    entries = {}
    for entry in filter(None, listing):
        meta, _, path = entry.partition("\t")
        mode, _kind, blob = meta.split(" ")
        entries[path] = (mode, blob)
    return entries


def blob(repo: Path, treeish: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "cat-file", "blob", f"{treeish}:{path}"], cwd=repo, capture_output=True, check=True
    ).stdout


def object_files(repo: Path) -> set[str]:
    objects = _git_dir(repo) / "objects"
    return {p.relative_to(objects).as_posix() for p in objects.rglob("*") if p.is_file()}


def commit_files(repo: Path, files: dict[str, str], message: str = "commit") -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", *files)
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def dirty_repo(git_repo: Path) -> Path:
    """A repo with a tracked edit, a `git rm`, a plain delete and an untracked file."""
    commit_files(git_repo, {"edit.txt": "old\n", "gone.txt": "x\n", "removed.txt": "y\n"})
    (git_repo / "edit.txt").write_text("new\n")
    git(git_repo, "rm", "-q", "removed.txt")
    (git_repo / "gone.txt").unlink()
    (git_repo / "new.txt").write_text("untracked\n")
    return git_repo


# -- clean trees --------------------------------------------------------------------


def test_clean_tree_snapshot_is_head(git_repo: Path) -> None:
    record = capture_repo(git_repo)

    assert (git(git_repo, "rev-parse", "HEAD"), git(git_repo, "rev-parse", "HEAD^{tree}")) == (
        record.snapshot,
        record.tree,
    )
    assert not record.dirty


def test_clean_tree_writes_no_object(git_repo: Path) -> None:
    before = object_files(git_repo)

    capture_repo(git_repo)

    assert before == object_files(git_repo)


def test_record_names_root_commit_and_branch(git_repo: Path) -> None:
    record = capture_repo(git_repo / "README.md")

    assert (str(git_repo.resolve()), git(git_repo, "rev-parse", "HEAD"), "main") == (
        record.root,
        record.commit,
        record.branch,
    )


def test_capture_from_a_subdirectory_records_the_whole_repo(git_repo: Path) -> None:
    commit_files(git_repo, {"src/pkg/mod.py": "x = 1\n"})
    (git_repo / "top.txt").write_text("untracked at the top\n")

    record = capture_repo(git_repo / "src" / "pkg")

    assert "top.txt" in tree_files(git_repo, record.tree)


# -- dirty trees --------------------------------------------------------------------


def test_dirty_tree_holds_edit_deletions_and_untracked_file(dirty_repo: Path) -> None:
    record = capture_repo(dirty_repo)

    files = tree_files(dirty_repo, record.snapshot or "")
    assert (b"new\n", b"untracked\n") == (
        blob(dirty_repo, record.tree, "edit.txt"),
        blob(dirty_repo, record.tree, "new.txt"),
    )
    assert set() == {"gone.txt", "removed.txt"} & set(files)


def test_dirty_tree_snapshot_has_head_as_parent_and_the_tree(dirty_repo: Path) -> None:
    record = capture_repo(dirty_repo)

    parents = git(dirty_repo, "rev-list", "--parents", "-n1", record.snapshot or "").split()[1:]
    assert ([git(dirty_repo, "rev-parse", "HEAD")], record.tree) == (
        parents,
        git(dirty_repo, "rev-parse", f"{record.snapshot}^{{tree}}"),
    )


def test_dirty_capture_leaves_user_state_unchanged(dirty_repo: Path) -> None:
    before = user_state(dirty_repo)

    capture_repo(dirty_repo)

    assert before == user_state(dirty_repo)


def test_dirty_record_lists_short_status_changes(dirty_repo: Path) -> None:
    record = capture_repo(dirty_repo)

    assert record.dirty
    assert [" D gone.txt", " M edit.txt", "?? new.txt", "D  removed.txt"] == sorted(record.changes)


def test_capture_creates_no_ref(dirty_repo: Path) -> None:
    refs = git(dirty_repo, "for-each-ref")

    capture_repo(dirty_repo)

    assert refs == git(dirty_repo, "for-each-ref")


def test_staged_file_edited_again_is_captured_as_in_the_working_tree(git_repo: Path) -> None:
    (git_repo / "README.md").write_text("staged\n")
    git(git_repo, "add", "README.md")
    (git_repo / "README.md").write_text("edited after staging\n")

    record = capture_repo(git_repo)

    assert b"edited after staging\n" == blob(git_repo, record.tree, "README.md")


def test_staged_only_change_is_captured(git_repo: Path) -> None:
    (git_repo / "README.md").write_text("staged\n")
    git(git_repo, "add", "README.md")

    record = capture_repo(git_repo)

    assert b"staged\n" == blob(git_repo, record.tree, "README.md")


def test_same_size_edit_in_the_index_clock_tick_is_captured(git_repo: Path) -> None:
    # git's racy-clean case: the file's stat data still matches its index entry, and
    # only the index's own mtime (not older than the file's) tells git to compare
    # contents. Reproduced exactly: same size, same mtime, ctime not trusted.
    git(git_repo, "config", "core.trustctime", "false")
    config = git_repo / "config.py"
    config.write_text("lr = 1\n")
    an_hour_ago = time.time_ns() - 3600 * 10**9  # committed well before the index write...
    os.utime(config, ns=(an_hour_ago, an_hour_ago))
    git(git_repo, "add", "config.py")
    git(git_repo, "commit", "-q", "-m", "config")
    config.write_text("lr = 2\n")  # ...then edited: same size, same mtime
    os.utime(config, ns=(an_hour_ago, an_hour_ago))
    os.utime(_git_dir(git_repo) / "index", ns=(an_hour_ago, an_hour_ago))

    record = capture_repo(git_repo)

    assert b"lr = 2\n" == blob(git_repo, record.tree, "config.py")


def test_snapshot_of_the_same_state_is_the_same_commit(dirty_repo: Path) -> None:
    assert capture_repo(dirty_repo).snapshot == capture_repo(dirty_repo).snapshot


def test_snapshot_uses_flexlock_identity_without_user_config(
    dirty_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ):
        monkeypatch.delenv(name)
    monkeypatch.setenv("EMAIL", "")
    git(dirty_repo, "config", "user.useConfigOnly", "true")  # no guessing from host names

    record = capture_repo(dirty_repo)

    assert "flexlock <flexlock@localhost>" == git(
        dirty_repo, "log", "-1", "--format=%an <%ae>", record.snapshot or ""
    )


def test_file_replaced_by_directory_is_captured(git_repo: Path) -> None:
    commit_files(git_repo, {"thing": "a file\n", "dir/inner.txt": "inner\n"})
    (git_repo / "thing").unlink()
    (git_repo / "thing").mkdir()
    (git_repo / "thing" / "child.txt").write_text("child\n")
    shutil.rmtree(git_repo / "dir")
    (git_repo / "dir").write_text("now a file\n")

    record = capture_repo(git_repo)

    files = tree_files(git_repo, record.tree)
    assert {"thing/child.txt", "dir"} <= set(files)
    assert set() == {"thing", "dir/inner.txt"} & set(files)


def test_symlink_and_exec_bit_changes_are_preserved(git_repo: Path) -> None:
    commit_files(git_repo, {"run.sh": "echo hi\n"})
    (git_repo / "run.sh").chmod(0o755)
    (git_repo / "link").symlink_to("run.sh")

    files = tree_files(git_repo, capture_repo(git_repo).tree)

    assert (("100755", "120000"), b"run.sh") == (
        (files["run.sh"][0], files["link"][0]),
        blob(git_repo, capture_repo(git_repo).tree, "link"),
    )


def test_deleted_directory_replaced_by_a_symlink_is_captured(git_repo: Path) -> None:
    commit_files(git_repo, {"d/c.txt": "c\n"})
    shutil.rmtree(git_repo / "d")
    (git_repo / "d").symlink_to("README.md")

    files = tree_files(git_repo, capture_repo(git_repo).tree)

    assert ("120000", False) == (files["d"][0], "d/c.txt" in files)


def test_file_name_that_is_not_utf8_is_captured(git_repo: Path) -> None:
    name = b"caf\xe9.txt"
    (git_repo / os.fsdecode(name)).write_bytes(b"latin-1 name\n")

    record = capture_repo(git_repo)

    listing = subprocess.run(
        ["git", "ls-tree", "-z", "--name-only", record.tree],
        cwd=git_repo,
        capture_output=True,
        check=True,
    ).stdout
    assert name in listing.split(b"\0")


def test_repository_env_vars_of_the_caller_are_ignored(
    dirty_repo: Path, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))  # as inside a git hook
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))

    record = capture_repo(dirty_repo)

    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert b"untracked\n" == blob(dirty_repo, record.tree, "new.txt")


# -- ignore rules -------------------------------------------------------------------


def test_ignored_untracked_file_is_left_out(git_repo: Path) -> None:
    commit_files(git_repo, {".gitignore": "*.log\n"})
    (git_repo / "debug.log").write_text("noise\n")

    record = capture_repo(git_repo)

    assert "debug.log" not in tree_files(git_repo, record.tree)
    assert not record.dirty


def test_tracked_but_ignored_file_is_kept_with_its_edit(git_repo: Path) -> None:
    commit_files(git_repo, {".gitignore": "*.log\n"})
    (git_repo / "keep.log").write_text("v1\n")
    git(git_repo, "add", "-f", "keep.log")
    git(git_repo, "commit", "-q", "-m", "force-add")
    (git_repo / "keep.log").write_text("v2\n")

    record = capture_repo(git_repo)

    assert b"v2\n" == blob(git_repo, record.tree, "keep.log")


def test_embedded_repository_is_listed_but_not_stored(git_repo: Path) -> None:
    nested = git_repo / "nested"
    nested.mkdir()
    git(nested, "init", "-q")
    (nested / "f.txt").write_text("inside\n")
    git(nested, "add", "f.txt")
    git(nested, "commit", "-q", "-m", "nested")

    record = capture_repo(git_repo)

    assert "?? nested/" in record.changes
    assert not any(path.startswith("nested") for path in tree_files(git_repo, record.tree))


# -- large untracked files ----------------------------------------------------------


def test_untracked_file_over_size_limit_is_skipped_with_size_and_hash(git_repo: Path) -> None:
    data = os.urandom(2048)
    (git_repo / "big.bin").write_bytes(data)

    record = capture_repo(git_repo, size_limit=1024)

    assert (("big.bin", 2048, f"sha256:{hashlib.sha256(data).hexdigest()}"),) == tuple(
        (skipped.path, skipped.size, skipped.hash) for skipped in record.skipped
    )
    assert "big.bin" not in tree_files(git_repo, record.tree)


def test_untracked_file_under_raised_size_limit_is_stored(git_repo: Path) -> None:
    (git_repo / "big.bin").write_bytes(b"x" * 2048)

    record = capture_repo(git_repo, size_limit=4096)

    assert ((), True) == (record.skipped, "big.bin" in tree_files(git_repo, record.tree))


def test_skipped_file_alone_keeps_head_as_snapshot_but_marks_dirty(git_repo: Path) -> None:
    (git_repo / "big.bin").write_bytes(b"x" * 2048)

    record = capture_repo(git_repo, size_limit=1024)

    assert (git(git_repo, "rev-parse", "HEAD"), True) == (record.snapshot, record.dirty)


# -- HEAD states --------------------------------------------------------------------


def test_unborn_branch_gives_root_snapshot_without_parent(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "first.py").write_text("print(1)\n")

    record = capture_repo(repo)

    assert (None, "main", "") == (
        record.commit,
        record.branch,
        git(repo, "log", "--format=%P", "-1", record.snapshot or ""),
    )
    assert b"print(1)\n" == blob(repo, record.tree, "first.py")


def test_unborn_branch_capture_leaves_user_state_unchanged(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "staged.py").write_text("staged\n")
    git(repo, "add", "staged.py")
    before = user_state(repo)

    capture_repo(repo)

    assert before == user_state(repo)


def test_detached_head_has_no_branch_and_stays_detached(git_repo: Path) -> None:
    commit_files(git_repo, {"later.txt": "later\n"})
    git(git_repo, "checkout", "-q", "--detach", "HEAD~1")
    (git_repo / "README.md").write_text("edited while detached\n")
    head = git(git_repo, "rev-parse", "HEAD")

    record = capture_repo(git_repo)

    assert (None, head, head) == (
        record.branch,
        git(git_repo, "log", "--format=%P", "-1", record.snapshot or ""),
        git(git_repo, "rev-parse", "HEAD"),
    )
    assert "HEAD" == git(git_repo, "rev-parse", "--abbrev-ref", "HEAD")


# -- refused states and clear errors ----------------------------------------------------


@pytest.fixture
def conflicted_repo(git_repo: Path) -> Path:
    commit_files(git_repo, {"a.txt": "base\n", "b.txt": "base\n"})
    git(git_repo, "checkout", "-q", "-b", "other")
    commit_files(git_repo, {"a.txt": "other\n", "b.txt": "other\n"})
    git(git_repo, "checkout", "-q", "main")
    commit_files(git_repo, {"a.txt": "main\n", "b.txt": "main\n"})
    merge = subprocess.run(
        ["git", "merge", "-q", "other"], cwd=git_repo, capture_output=True, check=False
    )
    assert merge.returncode != 0  # the conflict this fixture exists for
    return git_repo


def test_merge_in_progress_is_refused_listing_conflicted_paths(conflicted_repo: Path) -> None:
    with pytest.raises(GitError, match=r"merge is in progress .* a\.txt, b\.txt"):
        capture_repo(conflicted_repo)


def test_changes_beyond_max_changes_are_counted(git_repo: Path) -> None:
    for index in range(5):
        (git_repo / f"new{index}.txt").write_text("x\n")

    record = capture_repo(git_repo, max_changes=2)

    assert ("?? new0.txt", "?? new1.txt", "... and 3 more") == record.changes


def test_refused_merge_leaves_index_unmerged(conflicted_repo: Path) -> None:
    before = user_state(conflicted_repo)

    with pytest.raises(GitError):
        capture_repo(conflicted_repo)

    assert before == user_state(conflicted_repo)
    assert git(conflicted_repo, "ls-files", "--unmerged")


def test_not_a_repository_names_path_and_fix(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()

    with pytest.raises(GitError, match=rf"{plain} is not inside a git repository; run `git init`"):
        capture_repo(plain)


def test_missing_path_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="no-such-dir: no such file or directory"):
        capture_repo(tmp_path / "no-such-dir")


def test_git_missing_is_an_error_saying_to_install_it(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a real PATH without git, not a mock

    with pytest.raises(GitError, match="git is not installed or not on PATH"):
        capture_repo(git_repo)


def test_bare_repository_is_an_error(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))

    with pytest.raises(GitError, match="bare repository"):
        capture_repo(bare)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="making a repository owned by another user needs root",
)
def test_repository_of_another_user_mentions_safe_directory(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SUDO_UID", raising=False)  # git would trust the sudo caller's repos
    for path in [git_repo, *git_repo.rglob("*")]:
        os.lchown(path, 65534, 65534)

    with pytest.raises(GitError, match=rf"git config --global --add safe.directory {git_repo}"):
        capture_repo(git_repo)


def test_find_repo_root_from_a_file_in_a_subdirectory(git_repo: Path) -> None:
    (git_repo / "src").mkdir()
    (git_repo / "src" / "main.py").write_text("")

    assert git_repo.resolve() == find_repo_root(git_repo / "src" / "main.py")


def test_find_repo_root_outside_a_repository_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(GitError, match=str(tmp_path)):
        find_repo_root(tmp_path)


# -- remote -------------------------------------------------------------------------


def test_remote_url_has_credentials_stripped(git_repo: Path) -> None:
    git(git_repo, "remote", "add", "origin", "https://alice:s3cret@example.com/team/code.git")

    assert "https://example.com/team/code.git" == capture_repo(git_repo).remote


def test_remote_of_the_branch_is_preferred_over_origin(git_repo: Path) -> None:
    git(git_repo, "remote", "add", "origin", "https://example.com/origin.git")
    git(git_repo, "remote", "add", "fork", "git@example.com:me/fork.git")
    git(git_repo, "config", "branch.main.remote", "fork")

    assert "git@example.com:me/fork.git" == capture_repo(git_repo).remote


def test_repository_without_remote_records_none(git_repo: Path) -> None:
    assert capture_repo(git_repo).remote is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ghp_token@github.com/a/b.git", "https://github.com/a/b.git"),
        ("ssh://git:pw@host:2222/a/b.git", "ssh://git@host:2222/a/b.git"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        ("/srv/git/b.git", "/srv/git/b.git"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert expected == strip_credentials(url)


# -- include / exclude --------------------------------------------------------------


@pytest.fixture
def monorepo(git_repo: Path) -> Path:
    commit_files(git_repo, {"proj/a.py": "a\n", "proj/data.csv": "1\n", "other/b.py": "b\n"})
    return git_repo


def test_include_limits_the_tree_to_its_paths(monorepo: Path) -> None:
    (monorepo / "proj" / "a.py").write_text("a2\n")

    record = capture_repo(monorepo, include=["proj"])

    assert (["proj/a.py", "proj/data.csv"], b"a2\n") == (
        sorted(tree_files(monorepo, record.tree)),
        blob(monorepo, record.tree, "proj/a.py"),
    )


def test_changes_outside_include_do_not_change_the_record(monorepo: Path) -> None:
    before = capture_repo(monorepo, include=["proj"])
    (monorepo / "other" / "b.py").write_text("changed\n")
    (monorepo / "other" / "new.py").write_text("new\n")

    after = capture_repo(monorepo, include=["proj"])

    assert (before.tree, before.snapshot, False) == (after.tree, after.snapshot, after.dirty)


def test_exclude_drops_its_paths(monorepo: Path) -> None:
    record = capture_repo(monorepo, include=["proj"], exclude=["*.csv"])

    assert (["proj/a.py"], ("proj",), ("*.csv",)) == (
        sorted(tree_files(monorepo, record.tree)),
        record.include,
        record.exclude,
    )


def test_include_that_selects_nothing_is_an_error(monorepo: Path) -> None:
    with pytest.raises(GitError, match="pathspecs projx select no file"):
        capture_repo(monorepo, include=["projx"])


def test_include_of_only_untracked_files_records_them(monorepo: Path) -> None:
    (monorepo / "fresh").mkdir()
    (monorepo / "fresh" / "new.py").write_text("new\n")

    record = capture_repo(monorepo, include=["fresh"])

    assert ["fresh/new.py"] == sorted(tree_files(monorepo, record.tree))


def test_include_capture_leaves_user_state_unchanged(monorepo: Path) -> None:
    (monorepo / "proj" / "a.py").write_text("a2\n")
    before = user_state(monorepo)

    capture_repo(monorepo, include=["proj"], exclude=["*.csv"])

    assert before == user_state(monorepo)


# -- submodules ---------------------------------------------------------------------


@pytest.fixture
def with_submodule(tmp_path: Path, git_repo: Path) -> Path:
    library = tmp_path / "library"
    library.mkdir()
    git(library, "init", "-q", "-b", "main")
    commit_files(library, {"lib.py": "v1\n"})
    git(git_repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "lib")
    git(git_repo, "commit", "-q", "-m", "add submodule")
    return git_repo


def test_clean_submodule_is_recorded_at_its_commit(with_submodule: Path) -> None:
    record = capture_repo(with_submodule)

    sub_head = git(with_submodule / "lib", "rev-parse", "HEAD")
    assert (sub_head, sub_head, False) == (
        record.submodules["lib"].snapshot,
        tree_files(with_submodule, record.tree)["lib"][1],
        record.dirty,
    )


def test_dirty_submodule_gets_its_own_snapshot_linked_from_the_parent(with_submodule: Path) -> None:
    sub = with_submodule / "lib"
    commit_files(sub, {"lib.py": "v2 unpushed\n"})
    (sub / "lib.py").write_text("v3 uncommitted\n")
    (sub / "extra.py").write_text("untracked\n")

    record = capture_repo(with_submodule)

    sub_record = record.submodules["lib"]
    assert (sub_record.snapshot, b"v3 uncommitted\n", b"untracked\n") == (
        tree_files(with_submodule, record.tree)["lib"][1],
        blob(sub, sub_record.tree, "lib.py"),
        blob(sub, sub_record.tree, "extra.py"),
    )
    assert git(sub, "rev-parse", "HEAD") == git(
        sub, "log", "-1", "--format=%P", sub_record.snapshot or ""
    )


def test_dirty_submodule_capture_leaves_both_repos_unchanged(with_submodule: Path) -> None:
    sub = with_submodule / "lib"
    (sub / "lib.py").write_text("edited\n")
    before = (user_state(with_submodule), user_state(sub))

    capture_repo(with_submodule)

    assert before == (user_state(with_submodule), user_state(sub))


def test_keep_snapshot_pins_submodule_snapshots_too(with_submodule: Path) -> None:
    sub = with_submodule / "lib"
    (sub / "lib.py").write_text("edited\n")
    record = capture_repo(with_submodule)

    sub_snapshot = record.submodules["lib"].snapshot or ""

    ref = keep_snapshot(record, "sha256:" + "ab" * 32)

    assert (record.snapshot, sub_snapshot) == (
        git(with_submodule, "rev-parse", ref),
        git(sub, "rev-parse", KEPT_PREFIX + sub_snapshot),
    )


def test_uninitialised_submodule_keeps_its_gitlink(with_submodule: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(with_submodule), str(clone))  # submodule not initialised

    record = capture_repo(clone)

    assert ({}, git(clone, "rev-parse", "HEAD")) == (record.submodules, record.snapshot)


# -- worktrees and sparse checkouts ---------------------------------------------------


def test_linked_worktree_is_captured_from_its_own_index(git_repo: Path, tmp_path: Path) -> None:
    linked = tmp_path / "linked"
    git(git_repo, "worktree", "add", "-q", "-b", "feature", str(linked))
    (git_repo / "README.md").write_text("main worktree edit\n")
    git(git_repo, "add", "README.md")
    (linked / "README.md").write_text("linked worktree edit\n")
    before = user_state(linked)

    record = capture_repo(linked)

    assert (b"linked worktree edit\n", "feature", str(linked.resolve())) == (
        blob(git_repo, record.tree, "README.md"),
        record.branch,
        record.root,
    )
    assert before == user_state(linked)


@pytest.mark.parametrize("mode", ["no-cone", "cone-sparse-index"])
def test_sparse_checkout_keeps_out_of_cone_files(git_repo: Path, mode: str) -> None:
    commit_files(git_repo, {"in/a.txt": "a\n", "out/b.txt": "b\n"})
    if mode == "no-cone":
        git(git_repo, "sparse-checkout", "set", "--no-cone", "/in/")
    else:
        git(git_repo, "sparse-checkout", "init", "--cone", "--sparse-index")
        git(git_repo, "sparse-checkout", "set", "in")
    assert not (git_repo / "out").exists()  # the checkout really is sparse
    (git_repo / "in" / "a.txt").write_text("a2\n")
    before = user_state(git_repo)

    record = capture_repo(git_repo)

    assert (b"a2\n", tree_files(git_repo, "HEAD")["out/b.txt"]) == (
        blob(git_repo, record.tree, "in/a.txt"),
        tree_files(git_repo, record.tree)["out/b.txt"],
    )
    assert before == user_state(git_repo)


def test_split_index_capture_leaves_no_file_in_the_git_dir(dirty_repo: Path) -> None:
    git(dirty_repo, "config", "core.splitIndex", "true")
    git(dirty_repo, "update-index", "--split-index")
    entries = sorted(p.name for p in _git_dir(dirty_repo).iterdir())

    record = capture_repo(dirty_repo)

    assert (entries, b"untracked\n") == (
        sorted(p.name for p in _git_dir(dirty_repo).iterdir()),
        blob(dirty_repo, record.tree, "new.txt"),
    )


# -- locks and concurrency ----------------------------------------------------------


def test_stale_index_lock_does_not_break_capture_and_is_left_alone(dirty_repo: Path) -> None:
    lock = _git_dir(dirty_repo) / "index.lock"
    lock.write_bytes(b"left by a crashed git\n")
    mtime = lock.stat().st_mtime_ns

    record = capture_repo(dirty_repo)

    assert (b"untracked\n", b"left by a crashed git\n", mtime) == (
        blob(dirty_repo, record.tree, "new.txt"),
        lock.read_bytes(),
        lock.stat().st_mtime_ns,
    )


_CAPTURE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from flexlock.core._git import capture_repo
    from flexlock.core._git_snapshot import keep_snapshot
    record = capture_repo(sys.argv[1])
    ref = keep_snapshot(record, sys.argv[2]) if len(sys.argv) > 2 else None
    print(json.dumps([record.tree, record.snapshot, ref]))
    """
)


def _capture_in_processes(
    repo: Path, count: int, *extra: str
) -> list[subprocess.CompletedProcess[str]]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _CAPTURE_SCRIPT, str(repo), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def test_eight_concurrent_captures_succeed_with_identical_trees(dirty_repo: Path) -> None:
    results = _capture_in_processes(dirty_repo, 8)

    assert [(0, "")] * 8 == [(r.returncode, r.stderr) for r in results]
    assert 1 == len({r.stdout for r in results})


def test_eight_concurrent_pins_of_one_run_all_succeed(dirty_repo: Path) -> None:
    results = _capture_in_processes(dirty_repo, 8, "sha256:" + "cd" * 32)

    assert [(0, "")] * 8 == [(r.returncode, r.stderr) for r in results]
    _tree, snapshot, ref = json.loads(results[0].stdout)
    assert snapshot == git(dirty_repo, "rev-parse", ref)


# -- keeping snapshots --------------------------------------------------------------


def test_keep_snapshot_points_the_snapshot_ref_at_the_snapshot(dirty_repo: Path) -> None:
    record = capture_repo(dirty_repo)

    ref = keep_snapshot(record, "sha256:" + "0f" * 32)

    assert (KEPT_PREFIX + (record.snapshot or ""), record.snapshot) == (
        ref,
        git(dirty_repo, "rev-parse", ref),
    )


def test_runs_of_one_snapshot_share_one_ref(dirty_repo: Path) -> None:
    record = capture_repo(dirty_repo)

    for index in range(5):
        keep_snapshot(record, f"run-{index}")

    refs = git(dirty_repo, "for-each-ref", "--format=%(refname)", "refs/flexlock/")
    assert [KEPT_PREFIX + (record.snapshot or "")] == refs.splitlines()


def test_keep_snapshot_lists_each_save_dir_once(dirty_repo: Path, tmp_path: Path) -> None:
    record = capture_repo(dirty_repo)

    for save_dir in ("a", "b", "a"):
        keep_snapshot(record, "run-1", save_dir=tmp_path / save_dir)

    listed = save_dirs_file(dirty_repo).read_text().splitlines()
    assert [str(tmp_path / "a"), str(tmp_path / "b")] == listed


def test_keep_snapshot_twice_is_a_no_op(dirty_repo: Path) -> None:
    record = capture_repo(dirty_repo)
    ref = keep_snapshot(record, "run-1")

    assert (ref, record.snapshot) == (
        keep_snapshot(record, "run-1"),
        git(dirty_repo, "rev-parse", ref),
    )


def test_keep_snapshot_leaves_user_state_but_refs_unchanged(dirty_repo: Path) -> None:
    record = capture_repo(dirty_repo)
    before = user_state(dirty_repo)

    keep_snapshot(record, "run-1")

    assert before._replace(refs="") == user_state(dirty_repo)._replace(refs="")


def test_gc_prune_now_keeps_pinned_snapshot(dirty_repo: Path) -> None:
    record = capture_repo(dirty_repo)
    keep_snapshot(record, "run-1")

    git(dirty_repo, "gc", "-q", "--prune=now")

    assert "commit" == git(dirty_repo, "cat-file", "-t", record.snapshot or "")


def test_gc_prune_now_drops_unpinned_snapshot(dirty_repo: Path) -> None:
    # The counterpart of the test above: without the ref the snapshot is garbage.
    record = capture_repo(dirty_repo)

    git(dirty_repo, "gc", "-q", "--prune=now")

    missing = subprocess.run(
        ["git", "cat-file", "-e", record.snapshot or ""], cwd=dirty_repo, check=False
    )
    assert 0 != missing.returncode


def test_keep_snapshot_of_a_pruned_snapshot_is_a_clear_error(dirty_repo: Path) -> None:
    record = capture_repo(dirty_repo)
    git(dirty_repo, "gc", "-q", "--prune=now")

    with pytest.raises(GitError, match=f"snapshot {record.snapshot} of run run-1 is not in"):
        keep_snapshot(record, "run-1")


def test_keep_snapshot_of_a_record_without_snapshot_is_an_error(git_repo: Path) -> None:
    record = attrs.evolve(capture_repo(git_repo), snapshot=None)

    with pytest.raises(GitError, match=f"code record of {git_repo.resolve()} has no snapshot"):
        keep_snapshot(record, "run-1")


def test_keep_snapshot_in_a_missing_repository_is_an_error(git_repo: Path, tmp_path: Path) -> None:
    record = attrs.evolve(capture_repo(git_repo), root=str(tmp_path / "moved"))

    with pytest.raises(GitError, match="moved of run run-1 does not exist here"):
        keep_snapshot(record, "run-1")


@pytest.mark.parametrize(
    ("run_id", "ref"),
    [
        ("sha256:" + "9" * 64, REF_PREFIX + "sha256-" + "9" * 64),
        ("my run", REF_PREFIX + "my-run"),
        ("a..b", REF_PREFIX + "a-b"),
        ("x.lock", REF_PREFIX + "x-lock"),
        (".hidden/../up", REF_PREFIX + "hidden-up"),
    ],
)
def test_snapshot_ref_sanitises_run_ids(run_id: str, ref: str) -> None:
    assert ref == snapshot_ref(run_id)


def test_snapshot_ref_refuses_an_id_with_nothing_usable() -> None:
    with pytest.raises(GitError, match="cannot name a git ref"):
        snapshot_ref(":::")


# -- diff_trees ---------------------------------------------------------------------


def test_diff_trees_lists_name_status_lines(dirty_repo: Path) -> None:
    record = capture_repo(dirty_repo)

    lines = diff_trees(dirty_repo, git(dirty_repo, "rev-parse", "HEAD^{tree}"), record.tree)

    assert ["A\tnew.txt", "D\tgone.txt", "D\tremoved.txt", "M\tedit.txt"] == sorted(lines)


def test_diff_trees_of_equal_trees_is_empty(git_repo: Path) -> None:
    tree = git(git_repo, "rev-parse", "HEAD^{tree}")

    assert [] == diff_trees(git_repo, tree, tree)


def test_diff_trees_with_unknown_tree_says_to_fetch(git_repo: Path) -> None:
    tree = git(git_repo, "rev-parse", "HEAD^{tree}")

    with pytest.raises(GitError, match="does not hold tree"):
        diff_trees(git_repo, tree, "1" * 40)
