"""Exact code capture: the git tree of a working tree, kept as a snapshot commit.

`capture_repo` records a repository's exact working tree (uncommitted edits,
deletions and untracked files included) as a git tree and a *snapshot* commit on
top of HEAD, without touching the user's branch, index or working tree:

1. `git status --porcelain=v2` (without optional locks, so the real index is
   never rewritten) lists what differs from the index;
2. a private copy of the index (`GIT_INDEX_FILE` in a temp dir) gets exactly
   those paths through `git update-index`, and submodules their own snapshots;
3. `git write-tree` and `git commit-tree` (fixed flexlock identity and date, so
   the same tree on the same HEAD always gives the same commit) write objects
   only; no ref is created until `keep_snapshot` pins the commit under
   `refs/flexlock/snapshots/<commit>`, which protects it from `git gc`.

Core talks to git through plumbing commands in subprocesses, not GitPython:
its import alone costs more than a whole capture, and a clean capture takes
three git processes (rev-parse, status, config).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from flexlock.core._errors import GitError
from flexlock.core._git_runner import failure as _failure
from flexlock.core._git_runner import git_environment as _environment
from flexlock.core._git_runner import run_git as _run
from flexlock.core._git_snapshot import flagged_changes
from flexlock.core._model import RepoRecord, SkippedFile
from flexlock.core._system import RACY_WINDOW_NS

__all__ = [
    "DEFAULT_SIZE_LIMIT",
    "capture_repo",
    "find_repo_root",
    "strip_credentials",
]

#: Untracked files larger than this (bytes) are hashed and listed, not put into git.
DEFAULT_SIZE_LIMIT = 10 * 1024 * 1024
#: At most this many status lines are recorded in `RepoRecord.changes`.
MAX_CHANGES = 200

# A fixed identity and date make snapshots work without user.name/user.email and
# make them deterministic: the same tree on the same HEAD is the same commit, so
# concurrent captures and re-captures agree and pinning is idempotent.
_SNAPSHOT_ENV = {
    "GIT_AUTHOR_NAME": "flexlock",
    "GIT_AUTHOR_EMAIL": "flexlock@localhost",
    "GIT_AUTHOR_DATE": "@0 +0000",
    "GIT_COMMITTER_NAME": "flexlock",
    "GIT_COMMITTER_EMAIL": "flexlock@localhost",
    "GIT_COMMITTER_DATE": "@0 +0000",
}

# For commands on the private index: with a split index, writing it would leave a
# new `sharedindex.*` file in the user's .git; an unsplit private index does not.
_PRIVATE = ("-c", "core.splitIndex=false")


def _lines(output: bytes) -> list[str]:
    return os.fsdecode(output).splitlines()


# -- locating a repository ------------------------------------------------------


def _start_dir(path: str | os.PathLike[str]) -> Path:
    start = Path(path).expanduser()
    if not start.exists():
        raise GitError(f"{start}: no such file or directory; pass the path of a git checkout")
    return start if start.is_dir() else start.parent


def find_repo_root(path: str | os.PathLike[str]) -> Path:
    """Return the top directory of the git working tree that contains `path`.

    Raises:
        GitError: `path` is missing or not in a working tree, git is not installed, or
            git refuses the repository because another user owns it (safe.directory).
    """
    start = _start_dir(path)
    output = _run(["rev-parse", "--show-toplevel"], start).stdout
    return Path(os.fsdecode(output.rstrip(b"\n")))


class _Location(NamedTuple):
    root: Path
    index_file: Path  # this working tree's index (linked worktrees have their own)
    head_tree: str | None  # None on an unborn branch


def _locate(start: Path) -> _Location:
    # One process answers three questions; `--verify -q` exits 1 on an unborn
    # branch after printing the other answers.
    result = _run(
        ["rev-parse", "--show-toplevel", "--git-path", "index", "--verify", "-q", "HEAD^{tree}"],
        start,
        ok_codes=(0, 1),
    )
    lines = _lines(result.stdout)
    if len(lines) < 2:
        raise _failure(["rev-parse"], start, result.stderr)
    root = Path(lines[0])
    head_tree = lines[2] if result.returncode == 0 and len(lines) > 2 else None
    return _Location(root, start / lines[1], head_tree)


# -- reading the status -----------------------------------------------------------


class _Status(NamedTuple):
    head: str | None
    branch: str | None
    changes: list[str]  # `git status --short` lines
    update: list[bytes]  # paths whose working-tree version differs from the index
    removed: list[bytes]  # `--index-info` lines removing paths deleted from the working tree
    staged: list[bytes]  # paths whose index version differs from HEAD
    untracked: list[bytes]
    submodules: set[bytes]  # changed submodules (their own capture decides the gitlink)
    unmerged: list[str]


def _parse_status(output: bytes) -> _Status:
    status = _Status(None, None, [], [], [], [], [], set(), [])
    head: str | None = None
    branch: str | None = None
    records = iter(output.split(b"\0"))
    for record in records:
        if record.startswith(b"# branch.oid "):
            oid = record[13:].decode()
            head = None if oid == "(initial)" else oid
        elif record.startswith(b"# branch.head "):
            name = os.fsdecode(record[14:])
            branch = None if name == "(detached)" else name
        elif record[:2] in (b"1 ", b"2 "):
            fields = record.split(b" ", 8)
            path = fields[-1]
            if record[:1] == b"2":  # a rename: the path's 9th field is the score
                path = record.split(b" ", 9)[-1]
                next(records, None)  # the original path follows as its own record
            xy = fields[1].decode()
            status.changes.append(f"{xy.replace('.', ' ')} {os.fsdecode(path)}")
            if fields[2].startswith(b"S"):
                status.submodules.add(path)
            elif xy[1] == "D":
                # Removed by entry, not by path: `update-index --remove` refuses a path
                # whose parent directory has become a symlink.
                status.removed.append(b"0 " + fields[7] + b"\t" + path + b"\0")
            elif xy[1] != ".":
                status.update.append(path)
            if xy[0] != ".":
                status.staged.append(path)
        elif record.startswith(b"u "):
            path = record.split(b" ", 10)[-1]
            status.unmerged.append(os.fsdecode(path))
            status.changes.append(f"{record[2:4].decode()} {os.fsdecode(path)}")
        elif record.startswith(b"? "):
            status.untracked.append(record[2:])
            status.changes.append(f"?? {os.fsdecode(record[2:])}")
    return status._replace(head=head, branch=branch)


def _pathspecs(include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    if not include and not exclude:
        return []
    return [*(include or ["."]), *(f":(exclude){spec}" for spec in exclude)]


# -- the remote -------------------------------------------------------------------


def _start_config(root: Path) -> subprocess.Popen[bytes]:
    # Runs while `git status` does: the remote is independent of the status.
    return subprocess.Popen(
        ["git", "config", "-z", "--get-regexp", r"^(remote|branch)\."],
        cwd=root,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _remote_url(output: bytes, branch: str | None) -> str | None:
    """Pick the URL of the branch's remote, else `origin`'s, else the first remote's."""
    settings: dict[str, str] = {}
    for entry in output.split(b"\0"):
        key, _, value = os.fsdecode(entry).partition("\n")
        settings.setdefault(key, value)
    urls = {
        key[len("remote.") : -len(".url")]: value
        for key, value in settings.items()
        if key.startswith("remote.") and key.endswith(".url")
    }
    preferred = settings.get(f"branch.{branch}.remote") if branch else None
    for name in (preferred, "origin", *sorted(urls)):
        if name in urls:
            return strip_credentials(urls[name])
    return None


def strip_credentials(url: str) -> str:
    """Return `url` without a password (and, for http(s)/ftp, without any user name)."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in url:
        return url  # a path or scp-like `user@host:path`, which cannot hold a password
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    if parts.scheme.lower() in ("http", "https", "ftp", "ftps"):
        netloc = host  # tokens travel as the user name too (https://<token>@github.com)
    else:
        netloc = f"{userinfo.partition(':')[0]}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


# -- building the tree ------------------------------------------------------------


def _sha256(path: Path) -> str:
    from flexlock.core._hashing import hash_path

    return hash_path(path, use_cache=True, progress=False).hash


def _split_untracked(
    root: Path, untracked: list[bytes], size_limit: int
) -> tuple[list[bytes], list[SkippedFile]]:
    """Split untracked paths into those to snapshot and the large ones to skip."""
    kept: list[bytes] = []
    skipped: list[SkippedFile] = []
    for path in untracked:
        if path.endswith(b"/"):
            continue  # an embedded repository (not a submodule): git cannot store it as files
        full = root / os.fsdecode(path)
        try:
            size = full.lstat().st_size
        except FileNotFoundError:
            continue  # deleted since `git status`: nothing to record
        if size > size_limit and not full.is_symlink():
            skipped.append(SkippedFile(os.fsdecode(path), size, _sha256(full)))
        else:
            kept.append(path)
    return kept, skipped


def _gitlinks(root: Path, specs: Sequence[str]) -> dict[str, str]:
    """Map each submodule path in the index to the commit recorded there."""
    output = _run(["ls-files", "--stage", "-z", "--", *specs], root).stdout
    links: dict[str, str] = {}
    for entry in output.split(b"\0"):
        if entry.startswith(b"160000 "):
            meta, _, path = entry.partition(b"\t")
            links[os.fsdecode(path)] = meta.split(b" ")[1].decode()
    return links


def _write_tree(
    location: _Location, specs: Sequence[str], index_info: list[bytes], paths: list[bytes]
) -> str:
    """Write the tree of the index with `index_info` entries set and `paths` re-read from disk.

    All of it happens in a private index in a temp dir; the user's index is only read.
    """
    root = location.root
    temp_dir = tempfile.mkdtemp(prefix="flexlock-index-")
    try:
        index = Path(temp_dir) / "index"
        env = _environment({"GIT_INDEX_FILE": os.fspath(index)})
        if specs:
            # Only the selected paths, so the tree depends on nothing else. These
            # entries carry no stat data, so update-index re-hashes every path it is given.
            selected = _run(["ls-files", "--stage", "-z", "--", *specs], root).stdout
            if not selected and not paths:  # most likely a typo: refuse to record nothing
                raise GitError(
                    f"the pathspecs {' '.join(specs)} select no file in {root}; include and "
                    "exclude paths are git pathspecs relative to the repository root"
                )
            index_info = [selected, *index_info] if selected else index_info
        else:
            # copy2 keeps the index's mtime: git's racy-clean check compares file mtimes
            # with it, and a fresh mtime would let a same-size edit made in the same
            # clock tick as the last index write pass for unchanged.
            with contextlib.suppress(FileNotFoundError):  # nothing staged in a new repository
                shutil.copy2(location.index_file, index)
        if index_info:
            command = [*_PRIVATE, "update-index", "-z", "--index-info"]
            _run(command, root, env=env, stdin=b"".join(index_info))
        if paths:
            command = [*_PRIVATE, "update-index", "--add", "--remove", "--replace", "-z", "--stdin"]
            _run(command, root, env=env, stdin=b"".join(path + b"\0" for path in paths))
        return _run([*_PRIVATE, "write-tree"], location.root, env=env).stdout.decode().strip()
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def _commit(root: Path, tree: str, head: str | None) -> str:
    parent = ["-p", head] if head else []
    message = (
        "flexlock snapshot\n\n"
        f"The exact working tree of a run, on top of {head or 'an unborn branch'}.\n"
    )
    args = ["commit-tree", "--no-gpg-sign", tree, *parent, "-F", "-"]
    result = _run(args, root, env=_environment(_SNAPSHOT_ENV), stdin=message.encode())
    return result.stdout.decode().strip()


def _conflicts(root: Path, unmerged: list[str]) -> GitError:
    shown = sorted(unmerged)[:20]
    if len(unmerged) > len(shown):
        shown.append(f"{len(unmerged) - len(shown)} more")
    return GitError(
        f"cannot record the code in {root}: a merge is in progress with unresolved conflicts "
        f"in {', '.join(shown)} (or a rebase, cherry-pick or stash pop stopped on them); "
        "resolve them and `git add` the files, or abort (`git merge --abort`, "
        "`git rebase --abort`), then run again"
    )


# -- reusing a capture -----------------------------------------------------------

_Stamp = tuple[int, int, int, int, int] | None  # size, mtime, ctime, inode, mode; None: gone

#: A tree with more files and directories than this is re-checked by `git status`
#: only: the stat of every path would cost memory, and `git status` is fast anyway.
_WATCH_LIMIT = 50_000


class _Watch(NamedTuple):
    """Every path whose stat data decides the capture, and that data when it was judged.

    The tracked and untracked files (content), every directory git walks for untracked
    files (a new file changes its directory's mtime), and git's own files that change
    what status says: the index, HEAD, the branch's ref, packed-refs, config and the
    exclude files.
    """

    paths: tuple[str, ...]
    stamps: tuple[_Stamp, ...]


class _Reusable(NamedTuple):
    """A capture and what must still hold for it to describe the working tree again."""

    root: Path
    specs: tuple[str, ...]
    status: bytes  # the raw `git status` output the capture was built from
    stamps: tuple[_Stamp, ...]  # of every changed path, which git status only names
    paths: tuple[bytes, ...]
    record: RepoRecord
    index_file: tuple[Path, _Stamp]  # the index file: flipping a flag rewrites it
    watch: _Watch | None = None  # set once a status re-check confirmed the capture
    watch_after_ns: int = 0  # no watch before then: some path was too fresh to judge


# Captures kept for `capture_repo(reuse=True)`, per (start dir, options). A process that
# records many runs of one checkout (a task list's worker) then checks the stat data of
# the tree's paths per run (no git process at all), or runs `git status` once per run
# when the tree is too large or too freshly modified for stat data to prove anything.
_reusable: dict[tuple[object, ...], _Reusable] = {}


# str paths, not Path objects: a reuse check stats every path of the tree per run.
_join = os.path.join


def _stamp_of(path: str) -> _Stamp:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode)


def _stamps(root: Path, paths: Sequence[bytes]) -> tuple[_Stamp, ...]:
    return tuple(_stamp_of(_join(root, os.fsdecode(path))) for path in paths)


def _status_args(specs: Sequence[str]) -> list[str]:
    return [
        "status", "--porcelain=v2", "-z", "--branch", "--untracked-files=all",
        "--ignore-submodules=none", "--no-renames", "--", *specs,
    ]  # fmt: skip


def _git_files(kept: _Reusable) -> list[str]:
    """git's own files whose change can change the status or the record."""
    names = ["HEAD", "index", "packed-refs", "config", "info/exclude", "info/sparse-checkout"]
    if kept.record.branch:
        names.append(f"refs/heads/{kept.record.branch}")
    args = ["rev-parse", *(arg for name in names for arg in ("--git-path", name))]
    output = _lines(_run(args, kept.root).stdout)
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "git"
    files = [_join(kept.root, line) for line in output]
    return [
        *files,
        os.fspath(home / ".gitconfig"),
        os.fspath(xdg / "config"),
        os.fspath(xdg / "ignore"),
    ]


def _watch(kept: _Reusable, checked_ns: int) -> _Watch | int | None:
    """Stat every path the capture depends on.

    Returns the watch; or, when a path changed too recently for its stat data to prove
    anything, the time after which to try again; None for a tree too large to watch.

    Directories are walked as git walks them for untracked files: ignored directories
    and nested repositories are skipped, so writing run outputs under an ignored
    `results/` leaves the watch intact.
    """
    root = os.fspath(kept.root)
    specs = list(kept.specs)
    tracked = _run(["ls-files", "-z", "--", *specs], root).stdout.split(b"\0")
    ignored = _run(
        [
            "ls-files",
            "-z",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--directory",
            "--",
            *specs,
        ],
        root,
    ).stdout.split(b"\0")
    skip = {
        _join(root, os.fsdecode(entry.rstrip(b"/"))) for entry in ignored if entry.endswith(b"/")
    }
    files = [_join(root, os.fsdecode(path)) for path in (*tracked, *kept.paths) if path]
    directories: list[str] = []
    for top, subdirs, _ in os.walk(root):
        directories.append(top)
        subdirs[:] = [
            name
            for name in subdirs
            if name != ".git"
            and _join(top, name) not in skip
            and not os.path.lexists(_join(top, name, ".git"))
        ]
        if len(directories) + len(files) > _WATCH_LIMIT:
            return None
    paths = (*files, *directories, *_git_files(kept))
    stamps = tuple(_stamp_of(path) for path in paths)
    newest = max((max(stamp[1], stamp[2]) for stamp in stamps if stamp is not None), default=0)
    if newest >= checked_ns - RACY_WINDOW_NS:
        return newest + RACY_WINDOW_NS
    return _Watch(paths, stamps)


def _reuse(key: tuple[object, ...]) -> RepoRecord | None:
    """Return the kept capture for `key` if the working tree is still exactly as it was."""
    kept = _reusable.get(key)
    if kept is None:
        return None
    if kept.watch is not None:
        if tuple(map(_stamp_of, kept.watch.paths)) == kept.watch.stamps:
            return kept.record  # nothing git or the capture looks at has changed
        return None  # config or refs may have changed, which status does not show: capture
    checked_ns = time.time_ns()
    try:
        status = _run(_status_args(kept.specs), kept.root).stdout
    except GitError:
        return None  # the full capture says what is wrong
    if (
        status == kept.status
        and _stamps(kept.root, kept.paths) == kept.stamps
        and _stamps(kept.root, [os.fsencode(kept.index_file[0].resolve())]) == (kept.index_file[1],)
    ):
        if checked_ns > kept.watch_after_ns:
            with contextlib.suppress(GitError):  # else judged by `git status` next time too
                watch = _watch(kept, checked_ns)
                if isinstance(watch, _Watch):
                    _reusable[key] = kept._replace(watch=watch)
                else:  # too fresh (try again once it settled) or too large (never)
                    after = 2**63 if watch is None else watch
                    _reusable[key] = kept._replace(watch_after_ns=after)
        return kept.record
    return None


# -- public API -------------------------------------------------------------------


def capture_repo(
    path: str | os.PathLike[str],
    *,
    size_limit: int = DEFAULT_SIZE_LIMIT,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_changes: int = MAX_CHANGES,
    reuse: bool = False,
) -> RepoRecord:
    """Record the exact working tree of the git repository containing `path`.

    The user's HEAD, branch, index and files are left untouched. On a clean tree the
    snapshot is HEAD itself and no object is written; otherwise a snapshot commit
    (parent HEAD) is written but not referenced: `keep_snapshot` pins it.

    Args:
        path: A directory (or file) inside the working tree.
        size_limit: Untracked files larger than this many bytes are not put into git;
            they are listed under `skipped` with their size and sha256.
        include: Git pathspecs (relative to the repository root) that the record covers;
            the tree then holds only those paths. Default: the whole repository.
        exclude: Git pathspecs left out of the record.
        max_changes: Keep at most this many status lines in `changes`.
        reuse: Return this process's last capture with the same arguments when nothing
            it depends on changed since: the stat data (size, times, inode) of every
            file and walked directory of the tree and of git's index, HEAD, refs and
            config, or, for a tree of more than 50,000 paths, `git status` and the
            changed files' stat data. No git process, or one instead of five to seven.
            Paths changed within 2 s of a check are not judged by stat (a same-tick
            edit could go unnoticed): `git status` decides until they settle.

    Raises:
        GitError: not a git working tree, git missing, repository owned by another user
            (safe.directory), or a merge with unresolved conflicts in progress.
    """
    start = _start_dir(path)
    key = (os.fspath(start.resolve()), size_limit, tuple(include), tuple(exclude), max_changes)
    if reuse:
        unchanged = _reuse(key)
        if unchanged is not None:
            return unchanged
    started_ns = time.time_ns()
    location = _locate(start)
    root = location.root
    specs = _pathspecs(include, exclude)
    config = _start_config(root)
    try:
        status_output = _run(_status_args(specs), root).stdout
        status = _parse_status(status_output)
    finally:
        config_output = config.communicate()[0]  # reaped even when status failed
    if status.unmerged:
        raise _conflicts(root, status.unmerged)
    flagged = flagged_changes(root, specs)  # what `git status` trusts the flags about
    kept, skipped = _split_untracked(root, status.untracked, size_limit)
    # Deletions (index_info) go in before any path is re-read, and tracked paths before
    # untracked ones: a file that became a directory leaves the index before the new
    # files inside that directory enter it.
    paths = status.update + kept
    submodules: dict[str, RepoRecord] = {}
    index_info = [*status.removed, *flagged.index_info]
    if status.submodules or (root / ".gitmodules").exists():
        for sub_path, recorded in _gitlinks(root, specs).items():
            if not (root / sub_path / ".git").exists():
                continue  # not checked out (`git submodule update --init`): the gitlink stands
            record = capture_repo(root / sub_path, size_limit=size_limit, max_changes=max_changes)
            submodules[sub_path] = record
            if record.snapshot != recorded:
                link = f"160000 {record.snapshot}\t".encode() + os.fsencode(sub_path) + b"\0"
                index_info.append(link)
    if location.head_tree is not None and not (specs or paths or index_info or status.staged):
        tree = location.head_tree  # the index and working tree are HEAD's: nothing to write
    else:
        tree = _write_tree(location, specs, index_info, paths)
    snapshot = status.head if tree == location.head_tree else _commit(root, tree, status.head)
    changes = [*status.changes, *flagged.changes]
    if len(changes) > max_changes:
        changes = [*changes[:max_changes], f"... and {len(changes) - max_changes} more"]
    record = RepoRecord(
        root=os.fspath(root),
        commit=status.head,
        branch=status.branch,
        remote=_remote_url(config_output, status.branch),
        dirty=bool(changes),
        tree=tree,
        snapshot=snapshot,
        changes=tuple(changes),
        skipped=tuple(skipped),
        include=tuple(include),
        exclude=tuple(exclude),
        submodules=submodules,
    )
    if reuse:
        _keep(
            key,
            record,
            (*status.update, *status.untracked, *flagged.paths),
            location=location,
            specs=specs,
            output=status_output,
            started_ns=started_ns,
        )
    return record


def _keep(
    key: tuple[object, ...],
    record: RepoRecord,
    paths: tuple[bytes, ...],
    *,
    location: _Location,
    specs: Sequence[str],
    output: bytes,
    started_ns: int,
) -> None:
    """Keep a capture for reuse, unless a changed file is too recent to be judged by stat."""
    _reusable.pop(key, None)  # whatever was kept before describes an older state
    root = location.root
    if record.submodules or (root / ".gitmodules").exists():
        return  # a submodule's own working tree is not in this status: capture every time
    # Status names changed paths (and the flags name hidden ones); their contents are
    # judged by stat. Deleted paths need nothing: recreating one changes the status.
    stamps = _stamps(root, paths)
    newest = started_ns - RACY_WINDOW_NS
    if any(stamp is not None and max(stamp[1], stamp[2]) >= newest for stamp in stamps):
        return
    index = (location.index_file, _stamps(root, [os.fsencode(location.index_file.resolve())])[0])
    _reusable[key] = _Reusable(root, tuple(specs), output, stamps, paths, record, index)
