"""`flexlock push`: publish a run and everything upstream of it, code and data together.

Order (each step only after the previous one fully succeeded, so a partial push
never looks complete and re-running converges):

1. resolve the run and its upstream sheets (each once, cycles refused);
2. preflight: every repo's snapshot exists, its git remote answers without a
   prompt and holds no conflicting tag; the data remote is reachable;
   every data input still has its recorded hash;
3. upload each run's save_dir (without `.flexlock/debug/` unless asked) and data
   inputs with `rclone copy --immutable`, after removing what a killed push left
   (`_push_remote`); a folder already complete is skipped;
4. verify the remote copies against local sha256 (the manifest);
5. upload the manifest (with the absolute URL each repo is pushed to), then the
   run.lock: the completion marker;
6. push the snapshot commits as tags, `--atomic` per repo, never forced: a tag
   never names a run whose data is not complete.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from flexlock.cli._push_remote import clear_leftovers, read_remote_folder, verify_remote
from flexlock.cli._rclone import rclone
from flexlock.cli._remote import (
    absolute_remote_url,
    has_commit,
    has_remote,
    is_shallow,
    push_tags,
    remote_tags,
)
from flexlock.cli._transfer import (
    MANIFEST_NAME,
    MARKER_NAME,
    Manifest,
    glob_anchor,
    run_tag,
    sha256_file,
    walk_files,
)
from flexlock.core import (
    ConfigError,
    GitError,
    LockFileError,
    RunLock,
    VerificationError,
    hash_path,
    load,
)

__all__ = ["DEBUG_DIR", "PushedRun", "push", "resolve_lineage"]

#: Where a failed task keeps its locals (unredacted pickles): not pushed by default.
DEBUG_DIR = ".flexlock/debug"


@attrs.frozen
class PushedRun:
    """One run of a lineage, as push sees it."""

    lock: RunLock
    save_dir: Path
    tag: str


def _save_dir_of(lock_path: Path) -> Path:
    return lock_path.parent if lock_path.name == "run.lock" else lock_path


def _locate_prev(path: str, downstream: RunLock, downstream_dir: Path) -> Path:
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    bases = [Path(downstream.env.cwd)] if downstream.env else []
    bases += [Path.cwd(), downstream_dir]
    for base in bases:
        if (base / candidate).exists():
            return base / candidate
    return bases[0] / candidate


def resolve_lineage(run_dirs: Sequence[str | os.PathLike[str]]) -> list[PushedRun]:
    """Return the runs and all their upstream runs, upstream first, each once.

    Raises:
        LockFileError: a sheet is missing or unreadable, or the lineage has a cycle.
        ConfigError: a run is not succeeded.
        VerificationError: an upstream run changed since it was consumed.
    """
    ordered: list[PushedRun] = []
    done: set[Path] = set()

    def visit(lock_path: Path, stack: tuple[Path, ...], expected_id: str | None) -> None:
        key = lock_path.resolve()
        if key in stack:
            chain = " -> ".join(str(p) for p in (*stack, key))
            raise LockFileError(f"upstream cycle in run sheets: {chain}")
        if key in done:
            return
        lock = load(lock_path)
        if expected_id is not None and lock.id != expected_id:
            raise VerificationError(
                f"{lock_path}: upstream run changed since it was consumed (recorded {expected_id}, "
                f"now {lock.id}); push the run that consumed the current one, or restore it"
            )
        if lock.status != "succeeded":
            raise ConfigError(
                f"{lock_path}: run is {lock.status}, only succeeded runs can be pushed"
            )
        save_dir = _save_dir_of(key)
        for prev in lock.prevs.values():
            prev_path = _locate_prev(prev.path, lock, save_dir)
            if prev_path.is_dir():
                prev_path = prev_path / "run.lock"
            if not prev_path.is_file():
                raise LockFileError(
                    f"upstream run.lock {prev.path} of {lock_path} is missing "
                    f"(looked at {prev_path}); "
                    "restore it (e.g. flexlock pull) before pushing"
                )
            visit(prev_path, (*stack, key), prev.id)
        done.add(key)
        ordered.append(PushedRun(lock=lock, save_dir=save_dir, tag=run_tag(lock.id)))

    for run_dir in run_dirs:
        path = Path(run_dir)
        visit(path / "run.lock" if path.is_dir() else path, (), None)
    return ordered


def _data_location(path_as_given: str, lock: RunLock) -> Path:
    path = Path(path_as_given)
    if not path.is_absolute() and lock.env is not None and not path.exists():
        path = Path(lock.env.cwd) / path
    return path


def _is_glob(path: str) -> bool:
    return any(char in path for char in "*?[")


def _preflight_git(runs: Sequence[PushedRun], git_remote: str) -> dict[str, list[tuple[str, str]]]:
    """Check repos and remotes; return {repo root: [(snapshot, tag), ...]} still to push."""
    wanted: dict[str, dict[str, str]] = {}
    for run in runs:
        for repo_key, repo in run.lock.code.items():
            snapshot = repo.snapshot or repo.commit
            if snapshot is None:
                raise LockFileError(
                    f"run {run.tag}: repo {repo_key} has no snapshot commit to push"
                )
            tags = wanted.setdefault(repo.root, {})
            tags[run.tag] = snapshot
    to_push: dict[str, list[tuple[str, str]]] = {}
    for root, tags in wanted.items():
        if not Path(root).is_dir():
            raise GitError(
                f"repo {root} recorded in the sheet is not on this machine; push from where it ran"
            )
        if not has_remote(root, git_remote):
            raise GitError(
                f"repo {root} has no git remote {git_remote!r}: add one "
                f"(git remote add {git_remote} URL) "
                "or pass --git-remote NAME"
            )
        for snapshot in tags.values():
            if not has_commit(root, snapshot):
                raise GitError(f"repo {root}: snapshot commit {snapshot} is missing locally")
        existing_tags = remote_tags(root, git_remote, tags)
        pending = []
        for tag, snapshot in tags.items():
            existing = existing_tags.get(tag)
            if existing is None:
                pending.append((snapshot, tag))
            elif existing != snapshot:
                raise GitError(
                    f"repo {root}: tag {tag} already exists on {git_remote!r} at {existing[:12]}, "
                    f"not at this run's snapshot {snapshot[:12]}; refusing to overwrite it"
                )
        if pending and is_shallow(root):
            raise GitError(f"repo {root} is a shallow clone; run: git -C {root} fetch --unshallow")
        to_push[root] = pending
    return to_push


def _check_data_unchanged(run: PushedRun) -> None:
    for key, record in run.lock.data.items():
        algorithm = record.hash.split(":", 1)[0]
        location = _data_location(key, run.lock)
        current = hash_path(str(location), algorithm=algorithm)
        if current.hash != record.hash:
            raise VerificationError(
                f"data input {key} of run {run.tag} changed since the run "
                f"(recorded {record.hash[:19]}…, "
                f"now {current.hash[:19]}…); nothing was pushed for it"
            )


def _stage_run(run: PushedRun, stage: Path, repos: dict[str, str], *, with_debug: bool) -> Manifest:
    """Lay the run's remote layout out under `stage` as symlinks; return its manifest.

    rclone follows the links (`--copy-links`), so one rclone process uploads
    everything: its start-up cost is paid once per run.
    """
    files: dict[str, tuple[int, str]] = {}
    data: dict[str, tuple[str, str]] = {}

    def place(local: Path, remote_rel: str) -> None:
        link = stage / remote_rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(local.resolve())
        files[remote_rel] = (local.stat().st_size, sha256_file(local))

    for local in walk_files(run.save_dir):
        rel = local.relative_to(run.save_dir).as_posix()
        if rel == "run.lock" or local.name.startswith(".flexlock-tmp-"):
            continue
        if not with_debug and (rel + "/").startswith(DEBUG_DIR + "/"):
            continue
        place(local, f"run/{rel}")
    for index, key in enumerate(sorted(run.lock.data)):
        folder = f"data/{index}"
        location = _data_location(key, run.lock)
        if _is_glob(key):
            # The user's pattern, expanded as hashing expands it (absolute, `**`).
            pattern_matches = glob.glob(str(location), recursive=True)  # noqa: PTH207
            matches = sorted(Path(m) for m in pattern_matches if Path(m).is_file())
            anchor = glob_anchor(location)
            for match in matches:
                place(match, f"{folder}/{match.relative_to(anchor).as_posix()}")
            data[key] = (folder, "glob")
        elif location.is_dir():
            for local in walk_files(location):
                place(local, f"{folder}/{local.relative_to(location).as_posix()}")
            data[key] = (folder, "dir")
        else:
            place(location, f"{folder}/{location.name}")
            data[key] = (folder, "file")
    save_dir = run.lock.save_dir or str(run.save_dir)
    return Manifest(
        run_id=run.lock.id,
        tag=run.tag,
        save_dir=save_dir,
        files=files,
        data=data,
        repos={key: repos[repo.root] for key, repo in run.lock.code.items()},
    )


def _upload_run(
    run: PushedRun,
    remote: str,
    repos: dict[str, str],
    *,
    with_debug: bool,
    progress: bool,
    report: Callable[[str], None],
) -> None:
    """Upload and verify one run's data, manifest and (last) marker; converges after any kill."""
    base = f"{remote.rstrip('/')}/{run.tag}"
    marker = run.save_dir / "run.lock"
    with tempfile.TemporaryDirectory(prefix="flexlock-push-") as scratch:
        stage = Path(scratch) / "stage"
        manifest = _stage_run(run, stage, repos, with_debug=with_debug)
        manifest_text = manifest.dumps()
        folder = read_remote_folder(base, run.lock.id, marker)
        cleared = clear_leftovers(folder, manifest, manifest_text)
        if folder.complete:
            report(f"{run.tag} is complete on the data remote already")
            return
        if cleared:
            report(f"replaced {len(cleared)} file(s) a killed push left in {base}")
        rclone(
            ["copy", str(stage), base, "--copy-links", "--immutable", "--checksum"],
            what=f"uploading {run.tag} ({run.save_dir})",
            progress=progress,
        )
        verify_remote(manifest, base)
        manifest_file = Path(scratch) / MANIFEST_NAME
        manifest_file.write_text(manifest_text, encoding="utf-8")
        # copyto, not copy: the manifest's name is fixed; a killed upload of it was
        # removed above, and an identical one is skipped (--checksum).
        rclone(
            ["copyto", str(manifest_file), f"{base}/{MANIFEST_NAME}", "--checksum"],
            what=f"uploading the manifest of {run.tag}",
        )
    rclone(
        ["copyto", str(marker), f"{base}/{MARKER_NAME}", "--checksum"],
        what=f"uploading the run.lock of {run.tag}",
    )


def _debug_dirs(runs: Sequence[PushedRun]) -> list[Path]:
    return [run.save_dir / DEBUG_DIR for run in runs if (run.save_dir / DEBUG_DIR).is_dir()]


def push(
    run_dirs: Sequence[str | os.PathLike[str]],
    *,
    data_remote: str,
    git_remote: str = "origin",
    with_debug: bool = False,
    progress: bool = True,
    report: Callable[[str], None] = print,
) -> list[PushedRun]:
    """Publish runs and their upstream runs (code as tags, data with rclone); return them.

    `.flexlock/debug/` (a failed task's locals, unredacted) stays home unless
    `with_debug`. Each run's folder on the data remote records the absolute,
    credential-free URL each of its repos is pushed to.

    Raises:
        FlexLockError: at the first problem; whatever was uploaded before it is
            never marked complete, and running push again converges. A remote that
            cannot be reached or written is a `TransferError` (exit code 4), a
            hash mismatch a `VerificationError` (3), anything else exit code 2.
    """
    runs = resolve_lineage(run_dirs)
    tags_to_push = _preflight_git(runs, git_remote)
    repo_urls = {root: absolute_remote_url(root, git_remote) for root in tags_to_push}
    rclone(["mkdir", data_remote], what=f"checking data remote {data_remote}")
    for run in runs:
        _check_data_unchanged(run)
    debug_dirs = _debug_dirs(runs)
    if with_debug and debug_dirs:
        report(
            f"WARNING: pushing the debug data of {len(debug_dirs)} run(s) "
            f"({', '.join(str(d) for d in debug_dirs[:3])}): it holds a failed task's "
            "local variables unredacted (passwords, tokens, personal data included)"
        )
    elif debug_dirs:
        report(f"not pushing the debug data of {len(debug_dirs)} run(s) (--with-debug pushes it)")
    for run in runs:
        report(f"uploading {run.tag}: {run.save_dir} and {len(run.lock.data)} data input(s)")
        _upload_run(
            run, data_remote, repo_urls, with_debug=with_debug, progress=progress, report=report
        )
    for root, pending in tags_to_push.items():
        if pending:
            report(f"pushing {len(pending)} tag(s) of {root} to {git_remote}")
        push_tags(root, git_remote, pending, progress=progress)
    for run in runs:
        report(f"pushed {run.tag} ({run.save_dir})")
    return runs
