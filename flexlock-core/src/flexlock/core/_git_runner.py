"""The one way flexlock runs git: a sanitised environment and errors that say what to do.

Every git call of every distribution goes through `run_git`, so none of them looks
at another repository when flexlock runs inside a git hook (which sets `GIT_DIR`
and `GIT_INDEX_FILE`), none prompts for a password, none refreshes the user's
index, and none runs the user's hooks: flexlock's snapshots, temporary indexes
and ref updates are internal bookkeeping, not the user's commits, so a
`reference-transaction` hook that fails (or a `post-index-change` hook that
writes files) must neither break a run nor be triggered by one.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from flexlock.core._errors import GitError

__all__ = ["failure", "git_environment", "run_git"]

# Hooks are looked up as `<core.hooksPath>/<name>`; under /dev/null none exists.
# Passed on the command line, this outranks every config file of the user's.
_NO_HOOKS = ("-c", f"core.hooksPath={os.devnull}")

# Variables that point git at another repository or index (`git rev-parse
# --local-env-vars`); inherited from a hook or a wrapper they would make git
# capture something other than the directory we were given.
_REPO_ENV_VARS = (
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_DIR",
    "GIT_GRAFT_FILE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_OBJECT_DIRECTORY",
    "GIT_PREFIX",
    "GIT_REPLACE_REF_BASE",
    "GIT_SHALLOW_FILE",
    "GIT_WORK_TREE",
)


def git_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return this process's environment without the variables that redirect git, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if key not in _REPO_ENV_VARS}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # never refresh (rewrite) the user's index
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"  # stable English messages, which _failure() recognises
    env.pop("LANGUAGE", None)
    if extra:
        env.update(extra)
    return env


def run_git(
    args: Sequence[str],
    cwd: str | os.PathLike[str],
    *,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    ok_codes: tuple[int, ...] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """Run `git args` in `cwd`; raise GitError (naming `cwd` and the fix) when it fails."""
    try:
        result = subprocess.run(
            ["git", *_NO_HOOKS, *args],
            cwd=cwd,
            env=env if env is not None else git_environment(),
            input=stdin,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as error:
        if not Path(cwd).is_dir():
            raise GitError(f"{cwd}: no such directory") from error
        raise GitError(
            "git is not installed or not on PATH; install it (e.g. `apt install git`, "
            "`conda install git` or `module load git`) to record code state"
        ) from error
    if result.returncode not in ok_codes:
        raise failure(args, cwd, result.stderr)
    return result


def failure(args: Sequence[str], cwd: str | os.PathLike[str], stderr: bytes) -> GitError:
    """Turn git's stderr for `git args` in `cwd` into a GitError that names the fix."""
    message = os.fsdecode(stderr).strip()
    if "dubious ownership" in message:
        owner_dir = re.search(r"repository at '([^']+)'", message)
        repo = owner_dir.group(1) if owner_dir else os.fspath(cwd)
        return GitError(
            f"git refuses to work in {repo}: it is owned by another user (dubious ownership). "
            f"If you trust it, run: git config --global --add safe.directory {repo}"
        )
    if "not a git repository" in message:
        return GitError(
            f"{cwd} is not inside a git repository; run `git init` there and commit your code, "
            "or pass the path of the repository that holds it"
        )
    if "must be run in a work tree" in message:
        return GitError(
            f"{cwd} is a bare repository or a .git directory, not a working tree; "
            "pass the path of a checkout"
        )
    command = list(args)
    while command[:1] == ["-c"]:  # name the git command, not our config overrides
        command = command[2:]
    return GitError(f"`git {' '.join(command[:2])}` failed in {cwd}: {message or 'no message'}")
