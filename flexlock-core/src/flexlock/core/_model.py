"""The run sheet (`run.lock`) data model, schema version 2 (DESIGN.md §3).

Records are frozen attrs classes; `_lockfile` converts them to and from YAML
with one cattrs converter. Keys may be added in later minor revisions (a
reader ignores keys it does not know); a change of meaning bumps
`SCHEMA_VERSION`, and a reader refuses a newer one. Version 2 changed how
upstream sheets are written (once each, `_upstreams`); the model is the same,
and version 1 sheets are still read.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

__all__ = [
    "SCHEMA_VERSION",
    "AttemptRecord",
    "DataRecord",
    "EnvRecord",
    "ErrorRecord",
    "OutputRecord",
    "PrevRecord",
    "RepoRecord",
    "RunLock",
    "SkippedFile",
    "Status",
]

#: The major schema version this flexlock writes and reads.
SCHEMA_VERSION = 2

# "queued": written by an executor at submission, before the run starts (docs/run-sheet.md).
Status = Literal["queued", "running", "succeeded", "failed"]


@attrs.frozen
class ErrorRecord:
    """Why a run failed: exception type, message and a short traceback."""

    type: str
    message: str
    traceback: str = ""


@attrs.frozen
class SkippedFile:
    """An untracked file too large to put in a git snapshot, recorded by size and hash."""

    path: str
    size: int
    hash: str


@attrs.frozen
class RepoRecord:
    """The exact code state of one git repository at run time."""

    root: str
    commit: str | None  # HEAD; None on an unborn branch
    branch: str | None  # None when detached
    remote: str | None  # credentials stripped
    dirty: bool
    tree: str  # git tree id of the exact working tree, uncommitted changes included
    snapshot: str | None = None  # commit holding `tree`, kept under refs/flexlock/runs/<id>
    changes: tuple[str, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    # run directories inside the repo (not ignored) that were left out of `tree`
    outputs: tuple[str, ...] = ()
    submodules: dict[str, RepoRecord] = attrs.field(factory=dict)


@attrs.frozen
class DataRecord:
    """The content hash of one data input (file, directory or glob)."""

    hash: str  # "<algorithm>:<hex>"
    size: int
    files: int | None = None  # number of files, for directories and globs
    mtime_ns: int | None = None  # newest modification time, for `verify --fast`


@attrs.frozen
class OutputRecord:
    """One file or directory a run left in its save_dir (or declared), as it finished.

    `hash` is None when the output was not hashed (larger than the cap, or output
    hashing turned off): then size, file count and mtime are what `verify` compares.
    """

    hash: str | None  # "<algorithm>:<hex>"
    size: int
    files: int | None = None  # number of files, for directories
    mtime_ns: int | None = None  # newest modification time, for `verify --fast`


@attrs.frozen
class PrevRecord:
    """An upstream run this run consumed, with its sheet embedded."""

    id: str
    path: str  # the upstream run.lock as it was found
    lock: RunLock


@attrs.frozen
class EnvRecord:
    """Where and how the run ran; excluded from the run's identity."""

    python: str
    implementation: str
    platform: str
    hostname: str
    user: str
    cwd: str
    argv: tuple[str, ...] = ()
    packages: dict[str, str] = attrs.field(factory=dict)
    scheduler: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class AttemptRecord:
    """One attempt of a run that a scheduler requeued (time limit, preemption)."""

    job_id: str
    state: str  # how the attempt ended, in the scheduler's words: TIMEOUT, COMPLETED, ...
    started: str | None = None  # ISO 8601 UTC
    ended: str | None = None


@attrs.frozen
class RunLock:
    """One run sheet: what ran (config, code, data, upstream runs) and how it ended."""

    id: str
    status: Status
    created: str  # ISO 8601 UTC, e.g. 2026-11-26T12:00:00Z
    config: dict[str, Any] = attrs.field(factory=dict)
    save_dir: str | None = None
    finished: str | None = None
    error: ErrorRecord | None = None
    code: dict[str, RepoRecord] = attrs.field(factory=dict)
    data: dict[str, DataRecord] = attrs.field(factory=dict)
    prevs: dict[str, PrevRecord] = attrs.field(factory=dict)
    env: EnvRecord | None = None
    # What the run produced, recorded when it finished; None in a running sheet and in
    # sheets written before outputs were recorded. Not part of the identity.
    outputs: dict[str, OutputRecord] | None = None
    # Every attempt, oldest first, when a scheduler requeued the run; empty otherwise.
    # Not part of the identity.
    attempts: tuple[AttemptRecord, ...] = ()
    flexlock: int = SCHEMA_VERSION
