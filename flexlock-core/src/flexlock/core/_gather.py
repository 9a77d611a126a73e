"""Gathering a run's inputs before anything is written: options, repos, data, upstream runs.

Everything here can fail on bad input (a missing file, a repo in a merge), and it all
runs before `runlock()` writes a byte, so a failure leaves the save_dir as it was.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from flexlock.core._errors import ConfigError, GitError, LockFileError
from flexlock.core._lockfile import load, lock_path
from flexlock.core._model import DataRecord, PrevRecord, RepoRecord
from flexlock.core._outputs import DEFAULT_OUTPUT_MAX_BYTES
from flexlock.core._project import CodeScope, project_code_scope
from flexlock.core._recapture import outputs_in_code
from flexlock.core._redact import Redactor
from flexlock.core._savedir import DEFAULT_TTL_S
from flexlock.core._system import warn

__all__ = ["Hashed", "RunOptions", "capture_repos", "hash_data", "load_prevs"]

PathLike = str | os.PathLike[str]


def _redact_option(value: bool | Iterable[str]) -> bool | tuple[str, ...]:
    return value if isinstance(value, bool) else tuple(value)


# Not `converter=tuple`: attrs reads a converter's signature, and a builtin's is parsed
# from its text signature by `tokenize`, whose first use compiles a regex of ~4 ms.
def _as_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class RunOptions:
    """Options of `runlock(**options)`.

    Args:
        algorithm: hash algorithm for data inputs and outputs; default: the project's
            `[tool.flexlock] hash`, else `sha256`. A different one than the project's is
            refused (identities of one project must stay comparable).
        size_limit: untracked files above this many bytes are not put in code snapshots.
        include: git pathspecs the code record covers (default: the whole checkout),
            after those of the project's `[tool.flexlock.code]` table.
        exclude: git pathspecs left out of the code record, after the project's.
        redact: True (default secret keys), False (no redaction) or extra key regexes.
        lock_wait: seconds to wait for a live run holding the save_dir (0: fail at once).
        lock_ttl: a lock held from another host is stale after this many seconds without heartbeat.
        manifests: write data directories' file manifests under `.flexlock/manifests/`.
        hash_outputs: hash what the run leaves in its save_dir when it finishes (else
            outputs are recorded by size, file count and mtime only).
        output_max_bytes: outputs larger than this are recorded without a hash.
        packages: record versions of installed distributions in `env.packages`.
        finalize_at_exit: finalise a plain call at interpreter exit / uncaught exception / SIGTERM.
    """

    algorithm: str | None = None
    size_limit: int = 10 * 1024 * 1024
    include: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple)
    exclude: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple)
    redact: bool | tuple[str, ...] = attrs.field(default=True, converter=_redact_option)
    lock_wait: float = 0.0
    lock_ttl: float = DEFAULT_TTL_S
    manifests: bool = True
    hash_outputs: bool = True
    output_max_bytes: int = DEFAULT_OUTPUT_MAX_BYTES
    packages: bool = True
    finalize_at_exit: bool = True

    @classmethod
    def from_kwargs(cls, options: Mapping[str, Any]) -> RunOptions:
        """Build options from `runlock(**options)`, naming any unknown option."""
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                f"runlock() got unknown option(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(sorted(known))}"
            )
        return cls(**options)

    @property
    def hash_algorithm(self) -> str:
        """The algorithm data is hashed with (after `with_project_algorithm`)."""
        return self.algorithm or "sha256"

    def with_project_algorithm(self, repos: Iterable[PathLike] | None) -> RunOptions:
        """Return these options with the project's `[tool.flexlock] hash`, checked.

        The project is the first repo given, else the script's checkout.

        Raises:
            ConfigError: the project's algorithm is unknown or not installed here (names
                the extra to install), or `algorithm=` asks for another one.
        """
        from flexlock.core._digest import hasher_factory
        from flexlock.core._errors import HashError
        from flexlock.core._project import project_settings

        given = list(repos) if repos is not None else None
        root: Path | None
        try:
            root = _root_of(given[0]) if given and Path(given[0]).exists() else None
        except GitError:
            root = None  # capture_repos says what is wrong with the repo
        if not given:
            root = _script_repo()
        settings = project_settings(root) if root is not None and root.is_dir() else None
        wanted = settings.hash if settings is not None else None
        if wanted is None or settings is None:
            return self
        if self.algorithm is not None and self.algorithm != wanted:
            raise ConfigError(
                f"runlock(algorithm={self.algorithm!r}) but the project hashes data with"
                f' {wanted!r} ({settings.path}: [tool.flexlock] hash = "{wanted}"); drop the'
                " argument, or change the project's setting for every run"
            )
        try:
            hasher_factory(wanted)  # never a silent fallback to another algorithm
        except HashError as error:
            raise ConfigError(
                f'{settings.path}: [tool.flexlock] hash = "{wanted}": {error}'
            ) from None
        return attrs.evolve(self, algorithm=wanted)

    @property
    def redactor(self) -> Redactor:
        """The redactor these options describe."""
        return Redactor.from_option(self.redact)


def _script_repo() -> Path | None:
    """Return the git root of the calling script (`__main__.__file__`), else of the cwd."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    start = Path(script).resolve().parent if script else Path.cwd()
    try:
        return _cached_root(os.fspath(start))  # asked again for the project's settings
    except GitError:
        return None


@functools.lru_cache(maxsize=64)
def _cached_root(path: str) -> Path:
    from flexlock.core._git import find_repo_root

    return Path(find_repo_root(path))


def _root_of(repo: PathLike) -> Path:
    """Return the root of the checkout holding `repo`, asking git once per process."""
    if (Path(repo) / ".git").exists():
        return Path(repo)  # already a root: no git process
    return _cached_root(os.fspath(Path(repo).resolve()))


def _repo_key(root: Path) -> str:
    return os.path.relpath(root) if root.is_absolute() else str(root)


def capture_repos(
    repos: Iterable[PathLike] | None,
    options: RunOptions,
    known_roots: Iterable[str] = (),
    save_dir: Path | None = None,
) -> dict[str, RepoRecord]:
    from flexlock.core._git import capture_repo

    if repos is None:
        root = _script_repo()
        if root is None:
            warn(
                "flexlock: the script is not in a git repository; its code is not recorded "
                "(pass repos=[...] to record one)"
            )
            return {}
        if os.fspath(root) in set(known_roots):
            return {}  # amending a run that already records this repo: no second capture
        given: list[tuple[str, PathLike]] = [(_repo_key(root), root)]
    else:
        given = [(os.fspath(repo), repo) for repo in repos]
    captured: dict[str, RepoRecord] = {}
    roots = set(known_roots)
    for key, repo in given:
        if not Path(repo).exists():
            raise GitError(f"repo {key!r} does not exist; pass the path of a git checkout")
        # The project's [tool.flexlock.code] scope first, then this run's own pathspecs.
        scope = project_code_scope(_root_of(repo)) + CodeScope(options.include, options.exclude)
        record = capture_repo(
            Path(repo),
            size_limit=options.size_limit,
            include=scope.include,
            exclude=scope.exclude,
            reuse=True,  # many runs in one process (a task list's worker) share a checkout
        )
        outputs = outputs_in_code(record, save_dir)
        if outputs:
            record = capture_repo(
                Path(repo),
                size_limit=options.size_limit,
                include=scope.include,
                exclude=(*scope.exclude, *outputs),
                reuse=True,
            )
            # Kept apart from the user's excludes: which run directories exist changes
            # from run to run, and rerun_reason recomputes them (see `_recapture.current_tree`).
            record = attrs.evolve(record, exclude=scope.exclude, outputs=tuple(outputs))
        if record.root in roots:
            continue  # the same checkout given twice (e.g. '.' and the script's default)
        roots.add(record.root)
        captured[key] = record
    return captured


@attrs.frozen
class Hashed:
    """Data records, and the file manifests of directory/glob inputs (kept for verify)."""

    records: dict[str, DataRecord]
    manifests: dict[str, str]


def hash_data(data: Iterable[PathLike], options: RunOptions) -> Hashed:
    from flexlock.core._hashing import hash_path_with_manifest

    records: dict[str, DataRecord] = {}
    manifests: dict[str, str] = {}
    for path in data:
        # One walk gives both: the manifest of a directory is what its hash covers.
        record, manifest = hash_path_with_manifest(path, algorithm=options.hash_algorithm)
        records[os.fspath(path)] = record
        if record.files is not None:
            manifests[os.fspath(path)] = manifest
    return Hashed(records, manifests)


def load_prevs(prevs: Iterable[PathLike]) -> dict[str, PrevRecord]:
    loaded: dict[str, PrevRecord] = {}
    for prev in prevs:
        key = os.fspath(prev)
        path = lock_path(prev)
        try:
            sheet = load(path)
        except LockFileError as error:
            raise LockFileError(
                f"upstream run {key!r} cannot be used: {error}. Run that stage first, or fix "
                "the path in prevs=[...]"
            ) from None
        if sheet.status != "succeeded":
            raise LockFileError(
                f"upstream run {key!r} ({path}) has status {sheet.status!r}; only a succeeded "
                "run can be consumed. Re-run that stage first"
            )
        loaded[key] = PrevRecord(id=sheet.id, path=os.fspath(path), lock=sheet)
    return loaded
