"""`flexlock pull TAG`: restore a pushed run as the working directory it ran in, or nothing.

Trust is anchored in the run id the tag names (`_pull_trust`): every sheet must hash
to its id, every data input and output must match the sheet. All of it is staged
inside `--into` first (`_pull_layout`) and moved into place only after every check
passed, so a failed pull leaves `--into` exactly as it was.

Layout: `--into` becomes the run's working directory. Each repo of the run is cloned
and checked out (detached, at the run's tag) at its recorded place relative to it
(repo key `.` is `--into` itself); data inputs and run directories go to their recorded
paths. An upstream run whose code tree differs gets its own checkout under
`.flexlock/code/<sha256-…>/<repo key>`.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

import attrs

from flexlock.cli._pull_layout import (
    Staging,
    check_into,
    conflicts,
    inside,
    move_into_place,
    repo_place,
)
from flexlock.cli._pull_trust import check_sheet, check_staged, resolve_tag
from flexlock.cli._rclone import RcloneError, rclone
from flexlock.cli._remote import clone_at_tag
from flexlock.cli._transfer import (
    MANIFEST_NAME,
    MARKER_NAME,
    Manifest,
    glob_anchor,
    restored_path,
    run_tag,
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

__all__ = ["CODE_DIR", "pull"]

#: Where upstream runs whose code differs from the pulled run's are checked out.
CODE_DIR = PurePosixPath(".flexlock/code")
# Debug data (a failed task's pickled locals) is never restored: flexlock never
# unpickles what came from elsewhere, and a pulled run has no use for it.
_SKIPPED = "run/.flexlock/debug/"


@attrs.frozen
class _RemoteRun:
    """One run of the lineage as read from the data remote, its sheet already checked."""

    tag: str
    base: str
    lock: RunLock
    lock_text: str
    manifest: Manifest
    plan: Mapping[str, PurePosixPath]  # remote relative path -> destination under --into


def _fetch_text(remote_file: str, *, what: str) -> str | None:
    try:
        return rclone(["cat", remote_file], what=what).stdout
    except RcloneError as error:
        if "not found" in str(error) or "doesn't exist" in str(error):
            return None
        raise


def _read_run(base: str, tag: str, *, allow_incomplete: bool, allow_failed: bool) -> _RemoteRun:
    manifest_text = _fetch_text(f"{base}/{MANIFEST_NAME}", what=f"reading the manifest of {tag}")
    lock_text = _fetch_text(f"{base}/{MARKER_NAME}", what=f"reading the run.lock of {tag}")
    if manifest_text is None:
        raise ConfigError(
            f"{tag} not found on {base.rsplit('/', 2)[0]}: no {MANIFEST_NAME} (was it pushed?)"
        )
    if lock_text is None:
        hint = (
            "--allow-incomplete cannot restore a run whose run.lock was never uploaded"
            if allow_incomplete
            else "its push did not finish; run flexlock push again"
        )
        raise LockFileError(
            f"{tag} on {base} is incomplete (no run.lock completion marker): {hint}"
        )
    manifest = Manifest.loads(manifest_text, source=f"{base}/{MANIFEST_NAME}")
    lock = loads(lock_text, source=f"{base}/{MARKER_NAME}")
    check_sheet(lock, tag, allow_failed=allow_failed)
    if manifest.run_id != lock.id:
        raise VerificationError(
            f"{tag}: the manifest is for {manifest.run_id}, not for this run; nothing was restored"
        )
    plan = {
        rel: _destination(lock, manifest, rel)
        for rel in manifest.files
        if not rel.startswith(_SKIPPED)
    }
    return _RemoteRun(tag, base, lock, lock_text, manifest, plan)


def _destination(lock: RunLock, manifest: Manifest, remote_rel: str) -> PurePosixPath:
    """Map a remote file (run/..., data/<n>/...) to its place under --into."""
    folder, _, rest = remote_rel.partition("/")
    if folder == "run":
        return restored_path(lock.save_dir or manifest.save_dir, lock) / rest
    for key, (data_folder, kind) in manifest.data.items():
        if key in lock.data and remote_rel.startswith(data_folder + "/"):
            inner = remote_rel[len(data_folder) + 1 :]
            target = restored_path(key, lock)
            if kind == "file":
                return target
            if kind == "glob":
                return PurePosixPath(glob_anchor(target)) / inner
            return target / inner
    raise LockFileError(f"{manifest.tag}: manifest file {remote_rel} belongs to no recorded input")


def _sheet_place(run: _RemoteRun) -> PurePosixPath:
    return restored_path(run.lock.save_dir or run.manifest.save_dir, run.lock) / MARKER_NAME


def _read_lineage(
    tag: str, data_remote: str, *, upstream: bool, allow_incomplete: bool, allow_failed: bool
) -> list[_RemoteRun]:
    """Read and check every sheet (the run first, then upstream runs, each once)."""
    runs: list[_RemoteRun] = []
    pending, seen = [tag], {tag}
    while pending:
        current = pending.pop(0)
        base = f"{data_remote.rstrip('/')}/{current}"
        run = _read_run(base, current, allow_incomplete=allow_incomplete, allow_failed=allow_failed)
        runs.append(run)
        for prev in run.lock.prevs.values() if upstream else ():
            prev_tag = run_tag(prev.id)
            if prev_tag not in seen:
                seen.add(prev_tag)
                pending.append(prev_tag)
    return runs


def _merged_plan(runs: list[_RemoteRun]) -> dict[PurePosixPath, tuple[_RemoteRun, str]]:
    """Return destination -> (run, remote file); two runs may share one only with equal bytes."""
    merged: dict[PurePosixPath, tuple[_RemoteRun, str]] = {}
    for run in runs:
        counts = Counter([*run.plan.values(), _sheet_place(run)])
        twice = [str(place) for place, count in counts.items() if count > 1]
        if twice:
            raise LockFileError(f"{run.tag}: two files of the run go to {', '.join(twice[:5])}")
        for rel, destination in run.plan.items():
            other = merged.get(destination)
            if other is not None and other[0].manifest.files[other[1]] != run.manifest.files[rel]:
                raise LockFileError(
                    f"{destination} is restored by {other[0].tag} and {run.tag} with different "
                    "contents; pull them into separate directories (--no-upstream)"
                )
            merged.setdefault(destination, (run, rel))
    return merged


def _check_before_download(
    plan: Mapping[PurePosixPath, tuple[_RemoteRun, str]], into: Path, *, symlink: bool
) -> None:
    """Refuse, before any transfer, a conflicting file in --into or too little space."""
    clashing = []
    for destination, (run, rel) in sorted(plan.items()):
        target = into / destination
        if not inside(into, target.parent):
            clashing.append(f"{destination} (its directory leads outside {into})")
        elif os.path.lexists(target) and (
            not target.is_file() or sha256_file(target) != run.manifest.files[rel][1]
        ):
            clashing.append(str(destination))
    if clashing:
        raise ConfigError(
            f"--into {into} already holds other content at: {', '.join(clashing[:10])}; "
            "nothing was changed (pull into an empty directory, or move those aside)"
        )
    if not symlink:
        needed = sum(run.manifest.files[rel][0] for run, rel in plan.values())
        free = shutil.disk_usage(into).free
        if needed > free:
            raise ConfigError(
                f"--into {into} has {free / 1e9:.2f} GB free, the run needs {needed / 1e9:.2f} GB; "
                "nothing was changed"
            )


def _download(run: _RemoteRun, staging: Staging) -> Path:
    """Download the run's planned files into staging; check each against the manifest."""
    folder = staging.downloads / run.tag.replace("/", "-")
    folder.mkdir()
    listing = staging.root / f"{folder.name}.files"
    listing.write_text("".join(f"{rel}\n" for rel in sorted(run.plan)), encoding="utf-8")
    # --files-from-raw: only what the manifest lists (a remote cannot add files or fill the
    # disk with others); --skip-links: a symlink on the remote is never materialised.
    rclone(
        ["copy", run.base, str(folder), "--files-from-raw", str(listing), "--skip-links"],
        what=f"downloading {run.tag}",
        progress=True,
    )
    bad = []
    for rel in sorted(run.plan):
        size, digest = run.manifest.files[rel]
        staged = folder / rel
        if (
            staged.is_symlink()
            or not staged.is_file()
            or staged.stat().st_size != size
            or sha256_file(staged) != digest
        ):
            bad.append(rel)
    if bad:
        raise VerificationError(
            f"{run.tag}: {len(bad)} downloaded file(s) do not match the remote's manifest "
            f"(a damaged transfer or a tampered remote): {', '.join(bad[:10])}; "
            "nothing was moved into place"
        )
    return folder


def _store_source(run: _RemoteRun, store: Path, rel: str) -> Path:
    """Return the real path of a store file to link to, refusing anything outside the store."""
    real_store = Path(os.path.realpath(store))
    real = Path(os.path.realpath(store / run.tag / rel))
    size, digest = run.manifest.files[rel]
    if not real.is_relative_to(real_store):
        raise VerificationError(
            f"{run.tag}: store file {rel} leads outside the store ({real}); refused, "
            "nothing was linked"
        )
    if not real.is_file() or real.stat().st_size != size or sha256_file(real) != digest:
        raise VerificationError(
            f"{run.tag}: store file {rel} does not match the remote's manifest; nothing was linked"
        )
    return real


def _lay_out(
    runs: list[_RemoteRun],
    plan: Mapping[PurePosixPath, tuple[_RemoteRun, str]],
    sources: Mapping[tuple[str, str], Path],
    staging: Staging,
    *,
    symlink: bool,
) -> None:
    """Put every planned file (and each sheet) at its place in the staging tree."""
    for destination, (run, rel) in sorted(plan.items()):
        target = staging.tree / destination
        if not inside(staging.tree, target.parent):
            raise VerificationError(
                f"{run.tag}: {destination} would be written through a link of the restored code "
                "that leads out of --into; refused"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        source = sources[run.tag, rel]
        if os.path.lexists(target):
            if target.is_file() and sha256_file(target) == run.manifest.files[rel][1]:
                continue
            raise LockFileError(
                f"{run.tag}: {destination} is both a file of the restored code and a "
                "recorded data input or run file, with different contents"
            )
        if symlink:
            target.symlink_to(source)
        else:
            source.rename(target)
    for run in runs:
        sheet = staging.tree / _sheet_place(run)
        sheet.parent.mkdir(parents=True, exist_ok=True)
        sheet.write_text(run.lock_text, encoding="utf-8")


def _restore_code(
    runs: list[_RemoteRun],
    staging: Staging,
    repos: Mapping[str, str],
    report: Callable[[str], None],
) -> dict[str, dict[str, PurePosixPath]]:
    """Clone each run's repos into the staging tree; return {run tag: {key: place}} for the
    repos checked out away from their recorded place (upstream code that differs)."""
    placed: dict[PurePosixPath, str] = {}  # place under --into -> the tree checked out there
    checkouts: dict[tuple[PurePosixPath, str], PurePosixPath] = {}  # (repo place, tree) -> where
    where = []
    apart: dict[str, dict[str, PurePosixPath]] = {}
    for run in runs:
        for key, record in sorted(run.lock.code.items()):
            home = PurePosixPath(repo_place(key).as_posix())
            shared = checkouts.get((home, record.tree))
            if shared is not None:
                where.append(f"code of {run.tag} ({key}): {shared} (shared)")
                if shared != home:
                    apart.setdefault(run.tag, {})[key] = shared
                continue
            place = home
            if place in placed:  # the run's place holds another tree: its own checkout
                place = CODE_DIR / run.tag.removeprefix("flexlock/") / home
            url = _repo_url(key, record.remote, run.manifest, repos, run.tag)
            tree = clone_at_tag(url, staging.tree / place, run.tag)
            if tree != record.tree:
                raise VerificationError(
                    f"{run.tag}: code of {key} at the tag has tree {tree}, the sheet records "
                    f"{record.tree}; nothing was moved into place"
                )
            placed[place] = record.tree
            checkouts[home, record.tree] = place
            where.append(f"code of {run.tag} ({key}): {place}")
            if place != home:
                apart.setdefault(run.tag, {})[key] = place
    if any(place.is_relative_to(CODE_DIR) for place in placed) and PurePosixPath() in placed:
        # Extra checkouts inside the top repo must not become part of its working tree.
        exclude = staging.tree / ".git" / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a", encoding="utf-8") as handle:
            handle.write(f"/{CODE_DIR}/\n")
    for line in where:
        report(line)
    return apart


def _record_code_places(
    runs: list[_RemoteRun], apart: Mapping[str, Mapping[str, PurePosixPath]], staging: Staging
) -> None:
    """Tell each run whose code is checked out apart where it is (`.flexlock/repos.json`).

    Its sheet stays byte for byte what the id vouches for; verify, diff and resume read
    this file (`flexlock.core` layout rules) and still require the recorded tree there.
    """
    import json

    for run in runs:
        places = apart.get(run.tag)
        if not places:
            continue
        run_dir = (staging.tree / _sheet_place(run)).parent
        relative = {
            key: os.path.relpath(staging.tree / place, run_dir) for key, place in places.items()
        }
        target = run_dir / ".flexlock" / "repos.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, (json.dumps(relative, indent=1, sort_keys=True) + "\n").encode())


def _repo_url(
    key: str, recorded: str | None, manifest: Manifest, repos: Mapping[str, str], tag: str
) -> str:
    for url in (repos.get(key), repos.get("*"), manifest.repos.get(key), recorded):
        if url:
            return url
    raise ConfigError(
        f"{tag}: no git URL for repo {key!r} (the sheet records none, nor does the push): "
        f"pass --repo {key}=URL, or --no-code to restore data only"
    )


def pull(
    tag: str,
    *,
    data_remote: str,
    into: str | os.PathLike[str],
    repos: Mapping[str, str] | None = None,
    symlink: bool = False,
    allow_incomplete: bool = False,
    allow_failed: bool = False,
    merge: bool = False,
    code: bool = True,
    upstream: bool = True,
    report: Callable[[str], None] = print,
) -> RunLock:
    """Restore the run `tag` names (and its upstream runs) into `into`, all or nothing.

    `tag` is a full tag or a unique prefix of its hex. `repos` maps a repo key (or
    "*") to a git URL/path, ahead of the URLs recorded. `symlink` links data to a
    local directory store (never followed out of it, never modified) instead of
    copying. `merge` allows a non-empty `into` where nothing conflicts.

    Raises:
        ConfigError: unknown or ambiguous tag, a run not succeeded, an occupied or full
            `into`, a repo without a URL or outside the run's working directory.
        LockFileError: incomplete remote run, malformed or unsafe manifest.
        TransferError: the data or git remote cannot be reached or read (exit code 4).
        VerificationError: a sheet does not hash to its id, or a file or the restored code
            does not match the sheet (exit code 3).
    """
    into = Path(into)
    check_into(into, merge=merge)
    store = None
    if symlink:
        store = Path(data_remote)
        if ":" in data_remote.split("/", 1)[0] or not store.is_dir():
            raise ConfigError(
                f"--symlink needs the data remote to be a local directory, not {data_remote!r}"
            )
    full_tag = resolve_tag(tag, data_remote)
    runs = _read_lineage(
        full_tag,
        data_remote,
        upstream=upstream,
        allow_incomplete=allow_incomplete,
        allow_failed=allow_failed,
    )
    plan = _merged_plan(runs)
    if code:
        for run in runs:
            for key in run.lock.code:
                repo_place(key)
    # The topmost directory this pull creates: removed again if the pull fails.
    created = next((d for d in reversed((into, *into.parents)) if not d.exists()), None)
    into.mkdir(parents=True, exist_ok=True)
    try:
        _check_before_download(plan, into, symlink=symlink)
        with Staging(into) as staging:
            sources: dict[tuple[str, str], Path] = {}
            for run in runs:
                if store is None:
                    folder = _download(run, staging)
                    sources.update({(run.tag, rel): folder / rel for rel in run.plan})
                else:
                    sources.update(
                        {(run.tag, rel): _store_source(run, store, rel) for rel in run.plan}
                    )
            apart = _restore_code(runs, staging, repos or {}, report) if code else {}
            _lay_out(runs, plan, sources, staging, symlink=store is not None)
            _record_code_places(runs, apart, staging)
            for run in runs:
                for note in check_staged(staging.tree / _sheet_place(run), staging.tree, run.tag):
                    report(note)
            clashing = conflicts(staging.tree, into)
            if clashing:
                raise ConfigError(
                    f"--into {into} already holds other content at: {', '.join(clashing[:10])}; "
                    "nothing was changed"
                )
            moved = move_into_place(staging.tree, into)
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    for run in runs:
        if any(rel.startswith(_SKIPPED) for rel in run.manifest.files):
            report(f"note: {run.tag}: its debug data (.flexlock/debug) was not restored")
    how = "linked to the store" if store is not None else "copied"
    report(
        f"restored {len(runs)} run(s) into {into} ({moved} entries {how}; every sheet hashes to "
        "its id and every file matches its sheet)"
    )
    return runs[0].lock
