"""What push finds on the data remote, and how it makes a killed push's leftovers harmless.

rclone (1.60, local backend) writes an upload under its final name, so a killed
upload leaves a truncated file there, and `rclone copy --immutable` then refuses
every later push ("immutable file modified"). Push therefore lists the run's
remote folder first and, while the run's completion marker is not there, deletes
every file whose size or sha256 matches no file it is about to upload: such a
file belongs to no complete push, so nobody can have pulled it. Once the marker
is there the folder is frozen: a difference is refused, never repaired.

The cost is one `rclone lsjson` per run (plus one `rclone delete` only when
there is a leftover), instead of one rclone process per file that uploading
under temporary names and renaming would need.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import attrs

from flexlock.cli._rclone import rclone, rclone_json
from flexlock.cli._transfer import MANIFEST_NAME, MARKER_NAME, Manifest
from flexlock.core import ConfigError, LockFileError, VerificationError, loads

__all__ = [
    "RemoteFolder",
    "clear_leftovers",
    "read_remote_folder",
    "remote_hashes",
    "verify_remote",
]


_MAX_SHEET_BYTES = 64 << 20


def remote_hashes(base: str) -> dict[str, tuple[int, str | None]]:
    """Return {relative path: (size, sha256 or None)} of every file under a remote folder.

    A folder that does not exist yet is empty.
    """
    entries = rclone_json(
        ["lsjson", "-R", "--files-only", "--hash", "--hash-type", "sha256", base],
        what=f"listing {base}",
        missing_ok=True,
    )
    return {
        e["Path"]: (int(e["Size"]), (e.get("Hashes") or {}).get("sha256")) for e in entries or []
    }


@attrs.frozen
class RemoteFolder:
    """A run's folder on the data remote as push found it."""

    base: str
    found: Mapping[str, tuple[int, str | None]]
    complete: bool  # the marker there is this run's sheet, byte for byte

    def matches(self, path: str, size: int, sha256: str) -> bool:
        """Return whether `path` is there with this size and (when the remote hashes) sha256."""
        there = self.found.get(path)
        return there is not None and there[0] == size and there[1] in (None, sha256)


def _marker_is_a_sheet(base: str, run_id: str) -> bool:
    """Return whether the remote marker parses as a sheet of `run_id` (else it is a leftover)."""
    text = rclone(["cat", f"{base}/{MARKER_NAME}"], what=f"reading {base}/{MARKER_NAME}").stdout
    try:
        return loads(text).id == run_id
    except (LockFileError, ValueError):
        return False


def read_remote_folder(base: str, run_id: str, marker: Path) -> RemoteFolder:
    """List a run's remote folder and decide whether it is already complete.

    Raises:
        ConfigError: a complete push of another sheet with the same run id is
            there (the run was re-run since it was pushed): it is never replaced.
    """
    from flexlock.cli._transfer import sha256_file

    found = remote_hashes(base)
    ours = (marker.stat().st_size, sha256_file(marker))
    folder = RemoteFolder(base=base, found=found, complete=False)
    if MARKER_NAME not in found:
        return folder
    if folder.matches(MARKER_NAME, *ours):
        return attrs.evolve(folder, complete=True)
    # A sheet is a few KiB; anything huge is no sheet, and is not downloaded to find out.
    if found[MARKER_NAME][0] <= _MAX_SHEET_BYTES and _marker_is_a_sheet(base, run_id):
        raise ConfigError(
            f"{base} already holds a complete push of run {run_id} with another run.lock "
            f"than {marker} (the run was re-run with the same inputs since); it is never "
            "replaced: pull it, or delete that folder on the remote if it is yours"
        )
    return folder  # a marker upload that was killed: a leftover like any other


def clear_leftovers(folder: RemoteFolder, manifest: Manifest, manifest_text: str) -> list[str]:
    """Delete the files a killed push left in an incomplete folder; return their paths.

    Raises:
        VerificationError: the folder is complete but differs from the local run.
    """
    from hashlib import sha256

    wanted = dict(manifest.files)
    encoded = manifest_text.encode("utf-8")
    wanted[MANIFEST_NAME] = (len(encoded), sha256(encoded).hexdigest())
    stale = sorted(
        path
        for path, (size, digest) in wanted.items()
        if path in folder.found and not folder.matches(path, size, digest)
    )
    if folder.complete:
        # The data only: a manifest written by an older flexlock may lack `repos`.
        stale = [path for path in stale if path != MANIFEST_NAME]
        missing = sorted(set(manifest.files) - set(folder.found))
        if stale or missing:
            problems = [f"different {p}" for p in stale] + [f"missing {p}" for p in missing]
            raise VerificationError(
                f"{folder.base} is a complete push of this run but differs from the local "
                f"run: {', '.join(problems[:10])}; the remote is never changed once complete "
                "(check it with flexlock pull, or delete that folder on the remote if it is yours)"
            )
        return []
    if MARKER_NAME in folder.found:
        stale.append(MARKER_NAME)
    if stale:
        with tempfile.TemporaryDirectory(prefix="flexlock-push-") as scratch:
            listing = Path(scratch) / "leftovers.txt"
            listing.write_text("".join(f"{path}\n" for path in stale), encoding="utf-8")
            rclone(
                ["delete", folder.base, "--files-from-raw", str(listing)],
                what=f"removing what a killed push left in {folder.base}",
            )
    return stale


def verify_remote(manifest: Manifest, base: str) -> None:
    """Check every manifest file on the remote by size and sha256 (downloading if it has no sha256).

    Raises:
        VerificationError: naming each missing or different file.
    """
    found = remote_hashes(base)
    if any(found.get(path, (0, None))[1] is None for path in manifest.files if path in found):
        listing = rclone(["hashsum", "sha256", "--download", base], what=f"hashing {base}").stdout
        # sha256sum-style lines: "<hex>  <path>"
        downloaded = {
            path: digest
            for digest, _, path in (line.partition("  ") for line in listing.splitlines())
            if path
        }
        found = {path: (size, downloaded.get(path)) for path, (size, _) in found.items()}
    problems = []
    for path, (size, digest) in sorted(manifest.files.items()):
        if path not in found:
            problems.append(f"missing {path}")
        elif found[path] != (size, digest):
            problems.append(f"different {path}")
    if problems:
        raise VerificationError(
            f"remote copy of {manifest.tag} does not match: " + ", ".join(problems[:10])
        )
