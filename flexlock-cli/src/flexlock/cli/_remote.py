"""Every git operation of push and pull: repo checks, ls-remote, tag push, clone at a tag.

All of them go through core's one git runner (`flexlock.core.run_git`), not
GitPython. GitPython spawns `git` for every remote operation anyway, so it would
only add a dependency, its import cost and a second environment policy (it does not
strip `GIT_DIR`/`GIT_INDEX_FILE`, so inside a git hook it talks to the hook's
repository). With `run_git`, push and pull see exactly the environment code
capture sees, plus the batch settings below.

A failure to reach or copy to/from a git remote is a `TransferError` (exit code 4,
worth retrying); a problem with the local clone is a `GitError` (exit code 2).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from flexlock.core import (
    GitError,
    StatusLine,
    TransferError,
    git_environment,
    run_git,
    strip_credentials,
)

__all__ = [
    "absolute_remote_url",
    "clone_at_tag",
    "has_commit",
    "has_remote",
    "is_shallow",
    "push_tags",
    "remote_tags",
]

_T = TypeVar("_T")

# Nothing may wait for a human: a batch job has none. No password prompt (askpass
# answers empty), ssh never asks and gives up connecting after 15 s.
_BATCH_ENV = {
    "GIT_ASKPASS": "echo",
    "SSH_ASKPASS": "echo",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=15",
}
# Instead of a wall-clock timeout (which would kill a large but healthy transfer):
# abort an http(s) transfer that moved under 1 KiB/s for a minute.
_STALL_CONFIG = ("-c", "http.lowSpeedLimit=1024", "-c", "http.lowSpeedTime=60")


def _remote_git(args: Sequence[str], cwd: str | os.PathLike[str], *, what: str) -> bytes:
    """Run a git command that talks to a remote; a failure is a TransferError naming `what`."""
    try:
        # stdin=b"": an empty pipe, so neither git nor ssh can read the user's terminal.
        return run_git(
            [*_STALL_CONFIG, *args], cwd, env=git_environment(_BATCH_ENV), stdin=b""
        ).stdout
    except GitError as error:
        if shutil.which("git") is None:  # git itself is missing: a setup problem, not the remote
            raise
        raise TransferError(f"{what}: {error}") from error


def _with_status(text: str, work: Callable[[], _T]) -> _T:
    """Run `work`, showing `text` and the seconds elapsed on a terminal's status line."""
    status = StatusLine()
    if not status.enabled:
        return work()
    done = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not done.wait(1.0):
            status.show(f"{text} {time.monotonic() - start:.0f} s")

    ticker = threading.Thread(target=tick, name="flexlock-git-status", daemon=True)
    status.show(text)
    ticker.start()
    try:
        return work()
    finally:
        done.set()
        ticker.join()
        status.clear()


def has_remote(root: str, name: str) -> bool:
    """Return whether the repo at `root` has a git remote called `name`."""
    return run_git(["remote", "get-url", name], root, ok_codes=(0, 2)).returncode == 0


def absolute_remote_url(root: str, name: str) -> str:
    """Return the URL of git remote `name` of the repo at `root`, usable from anywhere.

    A relative path (`git remote add origin ../remote.git` is allowed) is resolved
    against the repo's root, which is what git itself resolves it against when it
    pushes from there; a password (and an http(s) user name, which may be a token)
    is removed, since the URL is uploaded with the run.
    """
    url = os.fsdecode(run_git(["remote", "get-url", name], root).stdout).strip()
    head, colon, _ = url.partition(":")
    scp_like = bool(colon) and "/" not in head and len(head) > 1  # host:path, not C:\
    if "://" not in url and not scp_like and not Path(url).is_absolute():
        url = str((Path(root) / url).resolve())
    return strip_credentials(url)


def has_commit(root: str, commit: str) -> bool:
    """Return whether `commit` exists (as a commit) in the repo at `root`."""
    verify = ["rev-parse", "--quiet", "--verify", f"{commit}^{{commit}}"]
    return run_git(verify, root, ok_codes=(0, 1)).returncode == 0


def is_shallow(root: str) -> bool:
    """Return whether the repo at `root` is a shallow clone."""
    return run_git(["rev-parse", "--is-shallow-repository"], root).stdout.strip() == b"true"


def remote_tags(root: str, remote: str, tags: Iterable[str]) -> dict[str, str]:
    """Return {tag: commit} of those of `tags` that exist on `remote` (one `git ls-remote`).

    Raises:
        TransferError: the remote is unreachable or wants interactive credentials.
    """
    listing = _remote_git(
        ["ls-remote", "--tags", remote, *(f"refs/tags/{tag}" for tag in tags)],
        root,
        what=f"repo {root}: git remote {remote!r} is unreachable or needs interactive credentials",
    )
    found = {}
    for line in os.fsdecode(listing).splitlines():  # "<sha>\t<ref>"
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/tags/"):
            found[ref.removeprefix("refs/tags/")] = sha
    return found


def push_tags(
    root: str, remote: str, pending: Sequence[tuple[str, str]], *, progress: bool
) -> None:
    """Push each (commit, tag) of `pending` to `remote`: one atomic push, never forced.

    Raises:
        TransferError: the remote is unreachable or rejected a tag (nothing was pushed).
    """
    if not pending:
        return
    refspecs = [f"{commit}:refs/tags/{tag}" for commit, tag in pending]

    def work() -> bytes:
        return _remote_git(
            ["push", "--atomic", "--quiet", remote, *refspecs],
            root,
            what=f"repo {root}: pushing tags to {remote!r} failed",
        )

    if progress:
        _with_status(f"  git: pushing {len(pending)} tag(s) to {remote}…", work)
    else:
        work()


def clone_at_tag(url: str, destination: Path, tag: str) -> str:
    """Fetch `tag` from `url` into a clone at `destination`, check it out detached; return its tree.

    An existing clone at `destination` is reused (a re-run pull only fetches).

    Raises:
        TransferError: `url` cannot be cloned or has no such tag.
        GitError: the local checkout failed.
    """
    if not (destination / ".git").exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        # From our own cwd, so a relative URL or path means what the user typed.
        _with_status(
            f"  git: cloning {url}…",
            lambda: _remote_git(
                ["clone", "--quiet", "--no-checkout", url, str(destination)],
                Path.cwd(),
                what=f"cloning {url} failed",
            ),
        )
    _with_status(
        f"  git: fetching {tag}…",
        lambda: _remote_git(
            ["fetch", "--quiet", url, f"+refs/tags/{tag}:refs/tags/{tag}"],
            destination,
            what=f"fetching tag {tag} from {url} failed",
        ),
    )
    run_git(["checkout", "--quiet", "--detach", f"refs/tags/{tag}"], destination)
    return os.fsdecode(run_git(["rev-parse", "HEAD^{tree}"], destination).stdout).strip()
