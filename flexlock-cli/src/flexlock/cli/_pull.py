"""`flexlock pull TAG`: restore a pushed run (code, data, upstream runs) and verify every byte.

Nothing from the remote is trusted: the completion marker must exist, every
manifest path is checked before anything is written, data lands in a staging
directory inside `--into` and is moved into place only after its sha256
matched the manifest, and restored code must have the recorded tree.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from flexlock.cli._rclone import RcloneError, rclone
from flexlock.cli._remote import clone_at_tag
from flexlock.cli._transfer import (
    MANIFEST_NAME,
    MARKER_NAME,
    Manifest,
    glob_anchor,
    restored_path,
    run_tag,
    safe_relative,
    sha256_file,
)
from flexlock.core import (
    ConfigError,
    LockFileError,
    RunLock,
    VerificationError,
    loads,
    write_atomic,
)

__all__ = ["pull"]


def _fetch_text(remote_file: str, *, what: str) -> str | None:
    try:
        return rclone(["cat", remote_file], what=what).stdout
    except RcloneError as error:
        if "not found" in str(error) or "doesn't exist" in str(error):
            return None
        raise


def _read_markers(base: str, tag: str, allow_incomplete: bool) -> tuple[RunLock, Manifest, str]:
    manifest_text = _fetch_text(f"{base}/{MANIFEST_NAME}", what=f"reading the manifest of {tag}")
    lock_text = _fetch_text(f"{base}/{MARKER_NAME}", what=f"reading the run.lock of {tag}")
    if manifest_text is None:
        raise ConfigError(
            f"{tag} not found on {base.rsplit('/', 2)[0]}: no {MANIFEST_NAME} (was it pushed?)"
        )
    if lock_text is None and not allow_incomplete:
        raise LockFileError(
            f"{tag} on {base} is incomplete (no run.lock completion marker): its push did "
            "not finish; "
            "run flexlock push again, or pass --allow-incomplete"
        )
    manifest = Manifest.loads(manifest_text, source=f"{base}/{MANIFEST_NAME}")
    if lock_text is None:
        raise LockFileError(
            f"{tag}: --allow-incomplete cannot restore a run whose run.lock was never uploaded"
        )
    lock = loads(lock_text, source=f"{base}/{MARKER_NAME}")
    if lock.id != manifest.run_id:
        raise VerificationError(
            f"{tag}: run.lock id {lock.id} does not match the manifest's {manifest.run_id}"
        )
    return lock, manifest, lock_text


def _destination(lock: RunLock, manifest: Manifest, remote_rel: str) -> Path:
    """Map a remote file (run/..., data/<n>/...) to its place under --into."""
    folder, _, rest = remote_rel.partition("/")
    if folder == "run":
        return Path(restored_path(lock.save_dir or manifest.save_dir, lock)) / rest
    for key, (data_folder, kind) in manifest.data.items():
        if remote_rel.startswith(data_folder + "/"):
            inner = remote_rel[len(data_folder) + 1 :]
            target = Path(restored_path(key, lock))
            if kind == "file":
                return target
            if kind == "glob":
                return Path(glob_anchor(target)) / inner
            return target / inner
    raise LockFileError(f"{manifest.tag}: manifest file {remote_rel} belongs to no recorded input")


def _inside(root: Path, path: Path) -> bool:
    real_root = root.resolve()
    real = path.resolve()
    return real == real_root or real.is_relative_to(real_root)


def _restore_data(
    lock: RunLock,
    manifest: Manifest,
    base: str,
    into: Path,
    report: Callable[[str], None],
    *,
    symlink_store: Path | None,
) -> None:
    plan = {rel: _destination(lock, manifest, rel) for rel in manifest.files}
    for rel, target in plan.items():
        if not _inside(into, into / target):
            raise LockFileError(
                f"{manifest.tag}: {rel} would be restored outside {into} ({target}); refused"
            )
    if symlink_store is not None:
        source_root = symlink_store / manifest.tag
        bad = [
            rel
            for rel, (size, digest) in manifest.files.items()
            if not (source_root / rel).is_file()
            or (source_root / rel).is_symlink()
            or (source_root / rel).stat().st_size != size
            or sha256_file(source_root / rel) != digest
        ]
        if bad:
            raise VerificationError(
                f"{manifest.tag}: store files do not match the manifest: {', '.join(bad[:10])}"
            )
        for rel, target in plan.items():
            source = source_root / rel
            # A read-only store: an edit through the link must fail, not change the archive.
            source.chmod(source.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
            destination = into / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            if destination.is_symlink() and destination.resolve() == source.resolve():
                continue
            if destination.exists() or destination.is_symlink():
                raise ConfigError(f"{destination} already exists; pull into an empty directory")
            destination.symlink_to(source.resolve())
        report(f"linked {len(plan)} file(s) of {manifest.tag} to the read-only store {source_root}")
        return
    staging = into / f".flexlock-staging-{manifest.tag.replace('/', '-')}"
    staging.mkdir(parents=True, exist_ok=True)
    # rclone re-copies any staged file whose size or time differs, so a killed pull resumes safely.
    # --skip-links: a symlink on the remote is never materialised (it could point anywhere).
    rclone(
        [
            "copy",
            base,
            str(staging),
            "--exclude",
            f"/{MANIFEST_NAME}",
            "--exclude",
            f"/{MARKER_NAME}",
            "--skip-links",
        ],
        what=f"downloading {manifest.tag}",
        progress=True,
    )
    bad = []
    for rel, (size, digest) in sorted(manifest.files.items()):
        staged = staging / rel
        if (
            staged.is_symlink()
            or not staged.is_file()
            or staged.stat().st_size != size
            or sha256_file(staged) != digest
        ):
            bad.append(rel)
    if bad:
        for rel in bad:
            with contextlib.suppress(OSError):
                (staging / rel).unlink()
        raise VerificationError(
            f"{manifest.tag}: {len(bad)} downloaded file(s) do not match their recorded sha256 "
            f"(corrupt or tampered remote): {', '.join(bad[:10])}; nothing was moved into place"
        )
    for rel, target in plan.items():
        destination = into / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        if (
            destination.exists()
            and not destination.is_symlink()
            and sha256_file(destination) == manifest.files[rel][1]
        ):
            continue
        if destination.exists() or destination.is_symlink():
            raise ConfigError(
                f"{destination} already exists with other content; pull into an empty directory"
            )
        (staging / rel).replace(destination)
    shutil.rmtree(staging, ignore_errors=True)
    report(f"restored {len(plan)} file(s) of {manifest.tag}, all sha256 verified")


def _restore_code(
    lock: RunLock, tag: str, into: Path, repos: Mapping[str, str], report: Callable[[str], None]
) -> None:
    for key, record in lock.code.items():
        url = repos.get(key) or repos.get("*") or record.remote
        if url is None:
            report(f"WARNING: no git url for repo {key}: code NOT restored (pass --repo {key}=URL)")
            continue
        name = Path(record.root).name or "repo"
        destination = into / "code" / name
        tree = clone_at_tag(url, destination, tag)
        if tree != record.tree:
            raise VerificationError(
                f"{tag}: restored code of {key} has tree {tree}, the sheet records {record.tree}"
            )
        report(f"restored code of {key} at {tag} into {destination}")


def pull(
    tag: str,
    *,
    data_remote: str,
    into: str | os.PathLike[str],
    repos: Mapping[str, str] | None = None,
    symlink: bool = False,
    allow_incomplete: bool = False,
    upstream: bool = True,
    report: Callable[[str], None] = print,
) -> RunLock:
    """Restore the run pushed under `tag` (and, by default, its upstream runs) into `into`.

    `repos` maps a sheet's repo key (or "*") to a git URL/path; without it the
    remote recorded in the sheet is used. `symlink` links files to a local
    directory store (made read-only) instead of copying.

    Raises:
        ConfigError: unknown tag, occupied destination, `--symlink` without a local store.
        LockFileError: incomplete remote run, malformed or unsafe manifest.
        TransferError: the data or git remote cannot be reached or read (exit code 4).
        VerificationError: a downloaded file or the restored code does not match (exit code 3).
    """
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    store = None
    if symlink:
        store = Path(data_remote)
        if ":" in data_remote.split("/", 1)[0] or not store.is_dir():
            raise ConfigError(
                f"--symlink needs the data remote to be a local directory, not {data_remote!r}"
            )
    seen: set[str] = set()

    def restore(current_tag: str) -> RunLock:
        base = f"{data_remote.rstrip('/')}/{current_tag}"
        lock, manifest, lock_text = _read_markers(base, current_tag, allow_incomplete)
        seen.add(current_tag)
        if upstream:
            for prev in lock.prevs.values():
                prev_tag = run_tag(prev.id)
                if prev_tag not in seen:
                    restore(prev_tag)
        for key in lock.data:
            if restored_path(key, lock).parts[0] == "_absolute":
                report(
                    f"note: absolute data path {key} is restored under "
                    f"{into / restored_path(key, lock)}"
                )
        _restore_data(lock, manifest, base, into, report, symlink_store=store)
        _restore_code(lock, current_tag, into, repos or {}, report)
        sheet = into / restored_path(lock.save_dir or manifest.save_dir, lock) / "run.lock"
        write_atomic(sheet, lock_text.encode("utf-8"))
        return lock

    return restore(safe_relative(tag).as_posix())
