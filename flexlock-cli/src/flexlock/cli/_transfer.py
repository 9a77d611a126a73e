"""What push and pull share: tag names, the remote layout, the manifest and safe paths.

Remote layout of one run under `<data-remote>/<tag>/` (tag = `flexlock/<algorithm>-<the
run id's full hex digest>`: the whole id, so the tag names exactly one sheet and pull can
refuse any other):

    run/...                 the run's save_dir (without run.lock)
    data/<n>/...            its n-th data input (sorted by the path recorded in the sheet)
    flexlock-manifest.json  every file above: size + sha256, and where each input goes back
    run.lock                uploaded last: the completion marker

The manifest is deterministic (no timestamps), so re-pushing identical content
is a no-op even with rclone's `--immutable`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import attrs

from flexlock.core import LockFileError, RunLock

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "glob_anchor",
    "restored_path",
    "run_tag",
    "safe_relative",
    "sha256_file",
    "tag_run_id",
]

MANIFEST_NAME = "flexlock-manifest.json"
MARKER_NAME = "run.lock"
_HEX_ID = re.compile(r"[0-9a-f]{32,128}")


def run_tag(run_id: str) -> str:
    """Return the git tag / remote folder name of a run: `flexlock/<algorithm>-<full hex>`."""
    algorithm, separator, digest = run_id.partition(":")
    if not separator or not re.fullmatch(r"[a-z0-9]+", algorithm) or not _HEX_ID.fullmatch(digest):
        raise LockFileError(f"run id {run_id!r} is not '<algorithm>:<hex digest>'")
    return f"flexlock/{algorithm}-{digest}"


def tag_run_id(tag: str) -> str:
    """Return the run id a full tag names (`flexlock/sha256-<hex>` -> `sha256:<hex>`).

    Raises:
        LockFileError: not a full run tag (a prefix must be resolved first).
    """
    name = tag.removeprefix("flexlock/")
    algorithm, separator, digest = name.partition("-")
    if not separator or not re.fullmatch(r"[a-z0-9]+", algorithm) or not _HEX_ID.fullmatch(digest):
        raise LockFileError(
            f"{tag!r} is not a full run tag (flexlock/<algorithm>-<hex digest of the run id>)"
        )
    return f"{algorithm}:{digest}"


def safe_relative(path: str) -> PurePosixPath:
    """Return `path` as a relative POSIX path, refusing anything that could escape a destination.

    Raises:
        LockFileError: absolute, `..`, empty components, backslashes or NUL.
    """
    if not path or "\x00" in path or "\\" in path or path.startswith("/"):
        raise LockFileError(f"unsafe path in manifest: {path!r}")
    parts = path.split("/")
    if any(part in {"", ".", ".."} for part in parts):
        raise LockFileError(f"unsafe path in manifest: {path!r}")
    return PurePosixPath(path)


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


def restored_path(path_as_given: str, lock: RunLock) -> PurePosixPath:
    """Where a recorded path goes under a pull's `--into` directory.

    Relative paths (relative to the run's cwd) keep their place; absolute ones
    inside the run's cwd become relative to it; any other absolute path goes
    under `_absolute/` (and pull says so).
    """
    path = Path(path_as_given)
    if path.is_absolute():
        cwd = Path(lock.env.cwd) if lock.env else None
        if cwd is not None and path.is_relative_to(cwd):
            return safe_relative(path.relative_to(cwd).as_posix())
        return safe_relative("_absolute/" + path.as_posix().lstrip("/"))
    return safe_relative(PurePosixPath(path.as_posix()).as_posix().removeprefix("./"))


@attrs.frozen
class Manifest:
    """The files of one pushed run and where its inputs go back on pull."""

    run_id: str
    tag: str
    save_dir: str  # as recorded in the sheet
    files: Mapping[str, tuple[int, str]]  # remote relative path -> (size, sha256 hex)
    data: Mapping[str, tuple[str, str]]  # recorded data path -> (remote folder "data/<n>", kind)
    # repo key -> the absolute URL push sent its snapshot to (for sheets with remote: null)
    repos: Mapping[str, str] = attrs.field(factory=dict)

    def dumps(self) -> str:
        """Render as deterministic JSON."""
        return (
            json.dumps(
                {
                    "flexlock_manifest": 1,
                    "run_id": self.run_id,
                    "tag": self.tag,
                    "save_dir": self.save_dir,
                    "data": {
                        key: {"folder": f, "kind": k} for key, (f, k) in sorted(self.data.items())
                    },
                    "files": {
                        key: {"size": s, "sha256": h} for key, (s, h) in sorted(self.files.items())
                    },
                    "repos": dict(sorted(self.repos.items())),
                },
                indent=1,
                sort_keys=True,
            )
            + "\n"
        )

    @classmethod
    def loads(cls, text: str, *, source: str) -> Manifest:
        """Parse and validate a manifest; every path is checked with `safe_relative`."""
        try:
            raw: Any = json.loads(text)
            files = {
                str(safe_relative(key)): (int(value["size"]), str(value["sha256"]))
                for key, value in raw["files"].items()
            }
            data = {
                key: (str(safe_relative(value["folder"])), str(value["kind"]))
                for key, value in raw["data"].items()
            }
            repos = {str(key): str(url) for key, url in raw.get("repos", {}).items()}
            return cls(
                run_id=str(raw["run_id"]),
                tag=str(raw["tag"]),
                save_dir=str(raw["save_dir"]),
                files=files,
                data=data,
                repos=repos,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise LockFileError(f"{source}: malformed manifest ({error})") from None


def glob_anchor(pattern: PurePath) -> PurePath:
    """Return the directory a glob input's files are stored relative to: its non-glob prefix.

    Push and pull both use it, so `data/a*/x.csv` comes back as `data/a1/x.csv`.
    """
    anchor = pattern.parent
    while any(char in anchor.as_posix() for char in "*?["):
        anchor = anchor.parent
    return anchor


def walk_files(root: Path) -> Iterator[Path]:
    """Yield the regular files under `root` (symlinks to files included, followed)."""
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            if path.is_file():
                yield path
