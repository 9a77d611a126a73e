"""Which runs of a project are up to date, and why the others are not (`flexlock status`).

A reader of sheets, like `_freshness.rerun_reason`, with the same building blocks: the
identity inputs a run keeps beside its sheet (`_inputs`), code re-captured with the
writer's rules once per repository (`_recapture.current_tree`), data re-hashed through
the hash cache (a `stat` per unchanged file, each input once per call however many runs
read it). Where `rerun_reason` stops at the first reason, this gathers every reason of
every run under the given directories, and carries staleness down the lineage: a run
whose upstream run is stale is stale too, because re-running the upstream run will
change what it consumed.

The runs are found by `_runs.find_runs` and summarised by `_runs.SummaryCache`, the
walker and header cache of `flexlock ls`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from flexlock.core._errors import FlexLockError, GitError, LockFileError
from flexlock.core._inputs import RunInputs, kept_inputs
from flexlock.core._layout import LOCK_NAME, resolve_recorded, resolve_repo, search_bases
from flexlock.core._recapture import clear_capture_cache, current_tree
from flexlock.core._runs import RunSummary, SummaryCache, find_runs, read_summary

__all__ = ["ReasonKind", "RunState", "StaleReason", "State", "count_states", "project_status"]

State = Literal["up to date", "stale", "failed", "running", "invalid"]
ReasonKind = Literal[
    "upstream re-run",  # the upstream sheet now has another id, or is no longer succeeded
    "upstream stale",  # the upstream run is itself not up to date: re-running it changes it
    "upstream missing",  # the upstream sheet is gone or unreadable
    "data changed",  # a data input's hash differs (or it is gone)
    "code changed",  # a repository's tree differs (or it is gone)
    "sheet edited",  # the sheet's id does not match its own contents
]

PathLike = str | os.PathLike[str]

_FILES_SHOWN = 3  # changed files named in a "code changed" reason


@attrs.frozen
class StaleReason:
    """One reason a run is stale: what kind, about what (a data key, repo, upstream run)."""

    kind: ReasonKind
    subject: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}" + (f" ({self.detail})" if self.detail else "")


@attrs.frozen
class RunState:
    """One run's place in the project: its sheet's header, its state, its upstream runs."""

    summary: RunSummary
    state: State
    reasons: tuple[StaleReason, ...] = ()
    prevs: tuple[tuple[str, Path], ...] = ()  # each upstream run: recorded key, run.lock now
    data: tuple[tuple[str, Path], ...] = ()  # each data input: recorded key, path now
    outside: bool = False  # not under the directories asked for: reached as an upstream run

    @property
    def path(self) -> Path:
        """Return the run's sheet (run.lock)."""
        return self.summary.path

    @property
    def upstream(self) -> tuple[Path, ...]:
        """Return the run.lock of each upstream run found."""
        return tuple(path for _, path in self.prevs)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping (paths as strings)."""
        return {
            **self.summary.to_dict(),
            "state": self.state,
            "reasons": [attrs.asdict(reason) for reason in self.reasons],
            "prevs": {key: str(path) for key, path in self.prevs},
            "data": {key: str(path) for key, path in self.data},
            "outside": self.outside,
        }


def project_status(
    roots: Iterable[PathLike],
    *,
    deep: bool = False,
    follow_symlinks: bool = False,
    use_summary_cache: bool = True,
) -> list[RunState]:
    """Return the state of every run under `roots`, upstream runs first (lineage order).

    Upstream runs outside `roots` that a listed run consumed are included, marked
    `outside`: their state decides whether their consumers are up to date.

    Args:
        roots: directories to search (as `flexlock ls` searches them).
        deep: also search inside run directories' non-run sub-directories.
        follow_symlinks: enter symlinked directories.
        use_summary_cache: reuse the header summaries `flexlock ls` keeps.

    Raises:
        LockFileError: a root does not exist.
    """
    clear_capture_cache()  # one answer per call: code edited since an earlier call counts
    checker = _Checker()
    found: dict[Path, RunState] = {}
    for root in roots:
        cache = SummaryCache(root) if use_summary_cache else None
        for lock_file in find_runs(root, deep=deep, follow_symlinks=follow_symlinks):
            key = _key(lock_file)
            if key not in found:
                summary = cache.summary(lock_file) if cache is not None else read_summary(lock_file)
                found[key] = checker.own_state(lock_file, summary)
        if cache is not None:
            cache.save()
    pending = [path for state in found.values() for path in state.upstream]
    while pending:  # upstream runs outside the roots, and theirs
        lock_file = pending.pop()
        key = _key(lock_file)
        if key not in found:
            state = attrs.evolve(
                checker.own_state(lock_file, read_summary(lock_file)), outside=True
            )
            found[key] = state
            pending += state.upstream
    return _propagate(found)


def _key(lock_file: Path) -> Path:
    return Path(os.path.abspath(lock_file))  # noqa: PTH100 - symlinks kept, as the walk gives them


class _Checker:
    """A run's own checks, with each repository captured and each data input hashed once."""

    def __init__(self) -> None:
        self._hashes: dict[tuple[Path, str], str | None] = {}
        self._changed_files: dict[tuple[str, str, str], str] = {}
        # Each sheet is read once: as a run, and as the upstream run of its consumers.
        self._sheets: dict[Path, tuple[RunInputs, bool] | LockFileError] = {}

    def _sheet(self, lock_file: Path) -> tuple[RunInputs, bool]:
        """Return a sheet's identity inputs, and whether the run kept them (not re-parsed).

        Raises:
            LockFileError: the sheet cannot be read.
        """
        key = _key(lock_file)
        if key not in self._sheets:
            kept = kept_inputs(lock_file)
            try:
                self._sheets[key] = (
                    (kept, True) if kept else (RunInputs.of(_load(lock_file)), False)
                )
            except LockFileError as error:
                self._sheets[key] = error
        found = self._sheets[key]
        if isinstance(found, LockFileError):
            raise found
        return found

    def own_state(self, lock_file: Path, summary: RunSummary) -> RunState:
        if summary.status == "invalid":
            return RunState(summary, "invalid")
        if summary.status == "failed":
            return RunState(summary, "failed", prevs=self._prevs_only(lock_file))
        if summary.status == "running":
            return RunState(summary, "running", prevs=self._prevs_only(lock_file))
        try:
            sheet, written_by_run = self._sheet(lock_file)
        except LockFileError as error:
            return RunState(attrs.evolve(summary, status="invalid", problem=str(error)), "invalid")
        bases = search_bases(sheet.save_dir, sheet.cwd, lock_file)
        reasons: list[StaleReason] = []
        trees = self._code(sheet, bases, lock_file, reasons)
        data, hashes = self._data(sheet, bases, reasons)
        prevs, ids = self._prevs(sheet, bases, reasons)
        if not written_by_run and not reasons:
            from flexlock.core._identity import compute_id

            if compute_id(sheet.config, trees, hashes, ids) != sheet.id:
                reasons.append(StaleReason("sheet edited", LOCK_NAME, "its id does not match"))
        return RunState(
            summary,
            "stale" if reasons else "up to date",
            tuple(reasons),
            prevs=tuple(prevs),
            data=tuple(data),
        )

    def _prevs_only(self, lock_file: Path) -> tuple[tuple[str, Path], ...]:
        """Return where a failed or running run's upstream runs are (for the lineage only)."""
        try:
            sheet, _ = self._sheet(lock_file)
        except LockFileError:
            return ()
        bases = search_bases(sheet.save_dir, sheet.cwd, lock_file)
        return tuple(
            (key, found)
            for key, (path, _) in sheet.prevs.items()
            if (found := _find_upstream(key, path, bases)) is not None
        )

    def _code(
        self, sheet: RunInputs, bases: list[Path], lock_file: Path, reasons: list[StaleReason]
    ) -> dict[str, str]:
        trees = {}
        for key, code in sheet.code.items():
            try:
                root = resolve_repo(key, bases, run_dir=lock_file.parent)
            except GitError:
                reasons.append(StaleReason("code changed", key, "repository not found"))
                continue
            current = current_tree(root, code)
            if isinstance(current, GitError):
                reasons.append(StaleReason("code changed", key, str(current)))
            elif current.tree != code.tree:
                reasons.append(
                    StaleReason("code changed", key, self._files(root, code.tree, current.tree))
                )
            else:
                trees[key] = current.tree
        return trees

    def _files(self, root: Path, recorded: str, now: str) -> str:
        """Name the files two trees differ in (one git call per pair, however many runs)."""
        memo = (os.fspath(root), recorded, now)
        if memo not in self._changed_files:
            from flexlock.core._git_snapshot import diff_trees

            try:
                files = [line.partition("\t")[2] for line in diff_trees(root, recorded, now)]
            except GitError:
                files = []  # the recorded tree is not in this clone: the change stands unnamed
            shown = ", ".join(files[:_FILES_SHOWN])
            more = len(files) - _FILES_SHOWN
            self._changed_files[memo] = shown + (f" +{more} more" if more > 0 else "")
        return self._changed_files[memo]

    def _data(
        self, sheet: RunInputs, bases: list[Path], reasons: list[StaleReason]
    ) -> tuple[list[tuple[str, Path]], dict[str, str]]:
        found, hashes = [], {}
        for key, recorded in sheet.data.items():
            target = resolve_recorded(key, bases)
            found.append((key, target))
            now = self._hash(target, recorded.partition(":")[0])
            if now is None:
                reasons.append(StaleReason("data changed", key, "no longer readable"))
            elif now != recorded:
                reasons.append(StaleReason("data changed", key))
            else:
                hashes[key] = now
        return found, hashes

    def _hash(self, target: Path, algorithm: str) -> str | None:
        memo = (target, algorithm)
        if memo not in self._hashes:
            from flexlock.core._hashing import hash_path

            try:
                self._hashes[memo] = hash_path(
                    target, algorithm=algorithm, use_cache=True, progress=False
                ).hash
            except FlexLockError:
                self._hashes[memo] = None
        return self._hashes[memo]

    def _prevs(
        self, sheet: RunInputs, bases: list[Path], reasons: list[StaleReason]
    ) -> tuple[list[tuple[str, Path]], dict[str, str]]:
        upstream, ids = [], {}
        for key, (recorded_path, recorded_id) in sheet.prevs.items():
            target = _find_upstream(key, recorded_path, bases)
            if target is None:
                reasons.append(StaleReason("upstream missing", key, "its run.lock is gone"))
                continue
            upstream.append((key, target))
            try:
                now, _ = self._sheet(target)
            except LockFileError:
                reasons.append(StaleReason("upstream missing", key, "its run.lock is unreadable"))
                continue
            if now.id != recorded_id:
                reasons.append(StaleReason("upstream re-run", key))
            elif now.status != "succeeded":
                reasons.append(StaleReason("upstream re-run", key, f"now {now.status}"))
            else:
                ids[key] = now.id
        return upstream, ids


def _find_upstream(key: str, recorded_path: str, bases: list[Path]) -> Path | None:
    """Return the run.lock an upstream run recorded as `recorded_path` (or `key`) is at now."""
    for candidate in (resolve_recorded(recorded_path, bases), resolve_recorded(key, bases)):
        lock_file = candidate / LOCK_NAME if candidate.is_dir() else candidate
        if lock_file.is_file():
            return lock_file
    return None


def _load(lock_file: Path) -> Any:
    from flexlock.core._lockfile import load

    return load(lock_file)


def _propagate(found: dict[Path, RunState]) -> list[RunState]:
    """Order the runs upstream first and mark the consumers of runs that are not up to date."""
    ordered = list(_lineage_order(found))
    result: dict[Path, RunState] = {}
    for key in ordered:
        state = found[key]
        named = {r.subject for r in state.reasons if r.kind.startswith("upstream")}
        inherited = [
            StaleReason("upstream stale", prev_key, before.state)
            for prev_key, upstream in state.prevs
            if prev_key not in named  # already "upstream re-run" or "missing" for that one
            and (before := result.get(_key(upstream))) is not None
            and before.state not in ("up to date", "running")
        ]
        if inherited and state.state in ("up to date", "stale"):
            state = attrs.evolve(state, state="stale", reasons=(*state.reasons, *inherited))
        result[key] = state
    return [result[key] for key in ordered]


def _lineage_order(found: dict[Path, RunState]) -> Iterator[Path]:
    """Yield the runs upstream first; runs with no order between them keep the walk's order."""
    import heapq

    position = {key: index for index, key in enumerate(found)}
    waiting = dict.fromkeys(found, 0)
    consumers: dict[Path, list[Path]] = {key: [] for key in found}
    for key, state in found.items():
        for upstream in dict.fromkeys(_key(path) for path in state.upstream):
            if upstream in found and upstream != key:
                waiting[key] += 1
                consumers[upstream].append(key)
    ready = [(position[key], key) for key, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    done: set[Path] = set()
    while ready:
        _, key = heapq.heappop(ready)
        done.add(key)
        yield key
        for consumer in consumers[key]:
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                heapq.heappush(ready, (position[consumer], consumer))
    yield from (key for key in found if key not in done)  # a cycle (paths reused): walk order


def count_states(states: Sequence[RunState]) -> dict[str, int]:
    """Return how many runs are in each state, in a fixed order, zeros left out."""
    order = ("up to date", "stale", "failed", "running", "invalid")
    counts = dict.fromkeys(order, 0)
    for state in states:
        counts[state.state] += 1
    return {name: count for name, count in counts.items() if count}
