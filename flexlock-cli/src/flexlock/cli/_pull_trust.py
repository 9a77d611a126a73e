"""What pull trusts: the run id the user named, and nothing the remote says about itself.

A tag (or a unique prefix of its hex) names a run id. The sheet pulled for it must
carry that id *and* hash to it (`compute_id` over the sheet's own config, code trees,
data hashes and upstream ids), and so must every upstream sheet embedded in it.
Every restored data input and output must then match the sheet's hashes; the remote's
manifest sha256s only check the transfer. A tampered remote can therefore withhold or
corrupt a run (pull refuses it), but cannot make pull restore other bytes under the
id you asked for.
"""

from __future__ import annotations

from pathlib import Path

from flexlock.cli._rclone import RcloneError, rclone_json
from flexlock.cli._transfer import restored_path, tag_run_id
from flexlock.core import (
    ConfigError,
    FlexLockError,
    RunLock,
    VerificationError,
    compute_id,
    hash_path,
    verify,
)

__all__ = ["check_sheet", "check_staged", "recomputed_id", "resolve_tag"]


def resolve_tag(tag: str, data_remote: str) -> str:
    """Return the full tag named by `tag`: a full tag, or a unique prefix of its hex digest.

    `flexlock/sha256-3f2a`, `sha256-3f2a` and `3f2a` all name the run folder
    `flexlock/sha256-3f2a…` of the data remote when it is the only one starting so.

    Raises:
        ConfigError: no run or several runs match (the candidates are named).
        TransferError: the data remote cannot be listed.
    """
    name = tag.strip().removeprefix("flexlock/")
    algorithm, separator, digest = name.partition("-")
    if not separator:
        algorithm, digest = "", name
    digest = digest.lower()
    if not digest or any(char not in "0123456789abcdef" for char in digest):
        raise ConfigError(
            f"{tag!r} is not a run tag: expected flexlock/<algorithm>-<hex> or a prefix of the hex"
        )
    base = f"{data_remote.rstrip('/')}/flexlock"
    try:
        entries = rclone_json(["lsjson", "--dirs-only", base], what=f"listing the runs on {base}")
    except RcloneError as error:
        if "not found" not in str(error) and "doesn't exist" not in str(error):
            raise
        entries = []
    names = sorted(str(entry["Name"]) for entry in entries or [])
    matches = [
        folder
        for folder in names
        if folder.partition("-")[2].startswith(digest)
        and (not algorithm or folder.partition("-")[0] == algorithm)
    ]
    if not matches:
        raise ConfigError(
            f"{tag} not found on {data_remote}: no pushed run's id starts with {digest} "
            "(was it pushed there? `rclone lsf " + base + "` lists the runs)"
        )
    if len(matches) > 1:
        shown = ", ".join(f"flexlock/{m}" for m in matches[:10])
        raise ConfigError(f"{tag} is ambiguous on {data_remote}: it matches {shown}; give more hex")
    return f"flexlock/{matches[0]}"


def recomputed_id(lock: RunLock) -> str:
    """Return the id a sheet's own fields hash to (what `runlock` computed when it ran)."""
    return compute_id(
        lock.config,
        {key: record.tree for key, record in lock.code.items()},
        {key: record.hash for key, record in lock.data.items()},
        {key: prev.id for key, prev in lock.prevs.items()},
    )


def check_sheet(lock: RunLock, tag: str, *, allow_failed: bool) -> None:
    """Refuse a sheet that is not the run `tag` names, or one that did not succeed.

    The sheet's `id:` must be the tag's id and its fields must hash to it; each embedded
    upstream sheet (`prevs[...].lock`) must hash to the id recorded for it, recursively.

    Raises:
        VerificationError: an id does not match (exit code 3): a tampered or wrong sheet.
        ConfigError: the run is not `succeeded` and `allow_failed` is false.
    """
    expected = tag_run_id(tag)
    if lock.id != expected:
        raise VerificationError(
            f"{tag}: the remote's run.lock has id {lock.id}, not the id the tag names "
            f"({expected}); the remote is corrupt or tampered, nothing was restored"
        )
    _check_ids(lock, f"{tag} (run.lock)")
    if lock.status != "succeeded" and not allow_failed:
        raise ConfigError(
            f"{tag}: the run is {lock.status}, not succeeded; pass --allow-failed to restore it"
        )


def _check_ids(lock: RunLock, where: str) -> None:
    """Check `lock` and every upstream sheet it holds, each distinct sheet once."""
    checked: set[int] = set()  # by object: a loaded sheet shares an upstream reached twice
    stack = [(lock, where)]
    while stack:
        sheet, at = stack.pop()
        if id(sheet) in checked:
            continue
        checked.add(id(sheet))
        actual = recomputed_id(sheet)
        if actual != sheet.id:
            raise VerificationError(
                f"{at}: the sheet's contents hash to {actual}, not to its id {sheet.id} "
                "(edited after the run, or tampered); nothing was restored"
            )
        for key, prev in sheet.prevs.items():
            if prev.lock.id != prev.id:
                raise VerificationError(
                    f"{at}: upstream {key} records id {prev.id} but embeds a sheet with id "
                    f"{prev.lock.id}; nothing was restored"
                )
        upstream = reversed(sheet.prevs.items())  # popped in order
        stack += [(prev.lock, f"{at}, upstream {key}") for key, prev in upstream]


def check_staged(lock_path: Path, tree: Path, tag: str) -> list[str]:
    """Check a staged run's data inputs and outputs against its own sheet; return notes.

    `tree` is the staged working directory: data inputs are where pull laid them
    (`restored_path`), outputs inside the staged run directory next to `lock_path`.

    Raises:
        VerificationError: naming each input or output that differs, is missing, or
            sits in the run directory without the sheet recording it.
    """
    from flexlock.core import load

    lock = load(lock_path)
    problems = []
    for key, record in sorted(lock.data.items()):
        location = tree / restored_path(key, lock)
        try:
            now = hash_path(
                str(location),
                algorithm=record.hash.partition(":")[0],
                use_cache=False,
                progress=False,
            ).hash
        except FlexLockError as error:
            problems.append(f"data {key} (unreadable: {error})")
            continue
        if now != record.hash:
            problems.append(f"data {key} (hash {now[:19]}…, the sheet records {record.hash[:19]}…)")
    report = verify(lock_path, base=tree, code=False, prevs=False, data=False, outputs=True)
    problems += [
        f"output {check.name} ({check.status}{': ' + check.detail if check.detail else ''})"
        for check in report.outputs
        if check.status != "ok"
    ]
    if problems:
        raise VerificationError(
            f"{tag}: restored files do not match the run's sheet (corrupt or tampered "
            f"remote): {'; '.join(problems[:10])}; nothing was moved into place"
        )
    if lock.outputs is None:
        return [
            f"note: {tag}: the sheet records no outputs, so the files of its run directory "
            "are checked against the transfer manifest only"
        ]
    return []
