"""`runlock()`: write a run's sheet at its start and finalise it at its end.

Life cycle: everything is gathered first (code capture, data hashes, upstream
sheets, env), so a bad input raises before anything is written; then the
save_dir lock is taken, the previous finished sheet is kept under
`.flexlock/history/`, and `run.lock` is written with status `running`. The
context-manager form finalises on exit; a plain call is finalised at
interpreter exit (`succeeded`), on an uncaught exception (`failed`, through a
chained `sys.excepthook`) or on SIGTERM (`failed`, e.g. a Slurm time limit).

Nesting: while a run is active in this context (a context variable) for the
same run.lock, a further `runlock()` call amends it (more repos, data, prevs)
instead of starting another, which is how a `runlock(...)` inside a
`@clicfg` main adds to the sheet the wrapper started.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

from flexlock.core._errors import ConfigError, FlexLockError, LockFileError, TaskFailedError
from flexlock.core._finalize import install_hooks, unfinished
from flexlock.core._gather import Hashed, RunOptions, capture_repos, hash_data, load_prevs
from flexlock.core._identity import compute_id, config_to_dict
from flexlock.core._inputs import write_inputs
from flexlock.core._layout import manifest_path
from flexlock.core._lockfile import dump, lock_path, write_atomic
from flexlock.core._model import (
    EnvRecord,
    ErrorRecord,
    OutputRecord,
    PrevRecord,
    RepoRecord,
    RunLock,
    Status,
)
from flexlock.core._outputs import record_outputs
from flexlock.core._redact import Redactor
from flexlock.core._savedir import (
    SaveDirLock,
    preserve_previous,
    sweep_save_dir,
    write_fault,
)
from flexlock.core._system import utc_now, warn

__all__ = [
    "Run",
    "RunOptions",
    "active_run",
    "compute_id",
    "runlock",
]


PathLike = str | os.PathLike[str]

#: Errors of a run being killed: its outputs are recorded without reading them.
_HURRIED_ERRORS = frozenset({"SIGTERM", "KeyboardInterrupt"})

_active: contextvars.ContextVar[Mapping[Path, Run]] = contextvars.ContextVar(
    "flexlock_active_runs",
    default=MappingProxyType({}),
)


def _resolve_lock_file(config: dict[str, Any], runlock_path: PathLike | None) -> tuple[Path, str]:
    """Return (run.lock path, save_dir as recorded)."""
    if runlock_path is not None:
        path = Path(runlock_path)
        if path.is_dir() or not path.suffix:
            path = path / "run.lock"
        save_dir = config.get("save_dir")
        return path, str(save_dir) if isinstance(save_dir, str) else str(path.parent)
    save_dir = config.get("save_dir")
    if isinstance(save_dir, str) and save_dir:
        return Path(save_dir) / "run.lock", save_dir
    raise ConfigError(
        "runlock() does not know where to write run.lock: give the config a save_dir "
        "field or pass runlock_path=Path(save_dir) / 'run.lock'"
    )


def _error_record(
    error: BaseException, redactor: Redactor, secrets: Iterable[str] = ()
) -> ErrorRecord:
    """Record `error` with value shapes and the config's secret values hidden."""
    import traceback

    kind = type(error)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    lines = traceback.format_exception(kind, error, error.__traceback__)
    short = "".join(lines[-12:])  # the innermost frames say where it failed
    return ErrorRecord(
        type=name,
        message=redactor.scrub(str(error), secrets),
        traceback=redactor.scrub(short[-4000:], secrets),
    )


# -- the run --------------------------------------------------------------------


class Run:
    """A run whose sheet is being written; returned by `runlock()`.

    Use it as a context manager to finalise the sheet when the block ends, or
    call `finish()` yourself. `lock` is the current sheet; `path` is the run.lock.
    """

    def __init__(
        self,
        *,
        path: Path,
        save_dir: str,
        config: dict[str, Any],
        code: dict[str, RepoRecord],
        data: Hashed,
        prevs: dict[str, PrevRecord],
        env: EnvRecord,
        options: RunOptions,
        outputs: Iterable[PathLike] = (),
    ) -> None:
        # Absolute, so a script that changes directory (or atexit, after a test
        # restored the cwd) still finalises the sheet it started.
        self.path = path.absolute()
        self.options = options
        self._save_dir = save_dir
        self._config = config
        #: secret values of the config as given, hidden wherever an error message repeats them
        self._secrets: frozenset[str] = frozenset()
        self._code = code
        self._data = dict(data.records)
        self._manifests = dict(data.manifests)
        self._prevs = prevs
        self._env = env
        # Absolute now: the script may change directory before the run finishes.
        self._declared_outputs = [Path(path).absolute() for path in outputs]
        self._outputs: dict[str, OutputRecord] | None = None
        self._created = utc_now()
        self._status: Status = "running"
        self._finished: str | None = None
        self._error: ErrorRecord | None = None
        self._save_lock = SaveDirLock(path.parent, ttl_s=options.lock_ttl, wait_s=options.lock_wait)
        self._mutex = threading.RLock()
        self._borrowed = 0  # nested runlock() calls that returned this run and may `with` it
        self._enters: list[bool] = []  # per `with`: True when borrowed (its exit must not finish)
        self._pinned: set[tuple[str, str]] = set()
        self.lock = self._build()

    # -- public -------------------------------------------------------------

    @property
    def id(self) -> str:
        """The run identity."""
        return self.lock.id

    @property
    def status(self) -> Status:
        """`running`, `succeeded` or `failed`."""
        return self._status

    @property
    def save_dir(self) -> Path:
        """The directory the sheet is written to."""
        return self.path.parent

    def amend(
        self,
        *,
        repos: Iterable[PathLike] | None = (),
        data: Iterable[PathLike] = (),
        prevs: Iterable[PathLike] = (),
        config: Any = None,
        outputs: Iterable[PathLike] = (),
    ) -> Run:
        """Add repos, data, prevs and outputs to this running run and rewrite its sheet.

        The new inputs give the run a new id; `outputs` (recorded when the run
        finishes) do not.

        `repos=None` adds the calling script's repo. `config` is taken only when
        the run has none yet. Inputs are gathered before anything changes, so a
        bad input raises and leaves the sheet as it was.

        Raises:
            FlexLockError: a bad input, or the run is already finished.
        """
        with self._mutex:
            if self._status != "running":
                raise FlexLockError(f"{self.path}: cannot amend a {self._status} run")
            roots = [record.root for record in self._code.values()]
            code = capture_repos(repos, self.options, known_roots=roots, save_dir=self.save_dir)
            hashed = hash_data(data, self.options)
            upstream = load_prevs(prevs)
            if config is not None and not self._config:
                plain = config_to_dict(config)
                self._config = self.options.redactor(plain)
                self._secrets = frozenset(self.options.redactor.secret_values(plain))
            self._code.update(code)
            self._data.update(hashed.records)
            self._prevs.update(upstream)
            self._declared_outputs += [
                declared
                for declared in (Path(path).absolute() for path in outputs)
                if declared not in self._declared_outputs
            ]
            self.lock = self._build()
            self._manifests.update(hashed.manifests)
            self._write_inputs(hashed.manifests)
            self._pin_snapshots()
            dump(self.lock, self.path)
        return self

    def redact_text(self, text: str) -> str:
        """Return `text` (a message, a traceback) with this run's secret values hidden."""
        return self.options.redactor.scrub(text, self._secrets)

    def finish(
        self, status: Status = "succeeded", error: BaseException | ErrorRecord | None = None
    ) -> None:
        """Write the final sheet with `status` (and `error`), release the save_dir; idempotent."""
        if status not in ("succeeded", "failed"):
            raise ValueError(f"finish() takes 'succeeded' or 'failed', not {status!r}")
        with self._mutex:
            if self._status != "running":
                return
            if isinstance(error, BaseException):
                error = _error_record(error, self.options.redactor, self._secrets)
            # Killed (a scheduler's SIGTERM, Ctrl-C): the grace period is short, so what
            # the run left is recorded by size and mtime, never read.
            hurried = isinstance(error, ErrorRecord) and error.type in _HURRIED_ERRORS
            self._status, self._error, self._finished = status, error, utc_now()
            written = False
            try:
                self._outputs = self._record_outputs(hashing=not hurried)
                self.lock = self._build()
                # One fsync, of the content: a crash then shows the `running` sheet or
                # the whole final one, never a torn one; a rename lost with the
                # directory's unsynced entry reads as interrupted and runs again.
                dump(self.lock, self.path, sync_directory=False)
                written = True
                write_inputs(self.path, self.lock)  # what resuming reads instead of the sheet
            except OSError as fault:
                # The run's record is lost or incomplete: the run failed (exit code 1).
                lost = "" if written else " (its sheet still says running)"
                raise TaskFailedError(
                    f"the {status} run was not recorded{lost}: {write_fault(fault, self.path)}"
                ) from fault
            finally:
                self._save_lock.release()
                unfinished.pop(id(self), None)
                active = _active.get()
                if active.get(self.path.resolve()) is self:
                    _active.set(
                        MappingProxyType({k: v for k, v in active.items() if v is not self})
                    )

    def __enter__(self) -> Run:
        with self._mutex:
            borrowed = self._borrowed > 0
            if borrowed:
                self._borrowed -= 1
            self._enters.append(borrowed)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._mutex:
            borrowed = self._enters.pop() if self._enters else False
        if borrowed:
            return  # the outer owner of this run finalises it
        if error is None:
            self.finish("succeeded")
        else:
            self.finish("failed", error)

    def __repr__(self) -> str:
        return f"<Run {self.path} {self._status} {self.lock.id}>"

    # -- internals ----------------------------------------------------------

    def _build(self) -> RunLock:
        run_id = compute_id(
            self._config,
            {key: record.tree for key, record in self._code.items()},
            {key: record.hash for key, record in self._data.items()},
            {key: record.id for key, record in self._prevs.items()},
        )
        return RunLock(
            id=run_id,
            status=self._status,
            created=self._created,
            finished=self._finished,
            error=self._error,
            save_dir=self._save_dir,
            config=self._config,
            code=dict(self._code),
            data=dict(self._data),
            prevs=dict(self._prevs),
            env=self._env,
            outputs=self._outputs,
        )

    def _record_outputs(self, *, hashing: bool) -> dict[str, OutputRecord]:
        """Record what the run left in its save_dir and the outputs it declared."""
        try:
            return record_outputs(
                self.path.parent,
                self._declared_outputs,
                algorithm=self.options.hash_algorithm,
                max_bytes=self.options.output_max_bytes,
                hashing=hashing and self.options.hash_outputs,
                manifests=self.options.manifests,
            )
        except Exception as error:
            warn("flexlock: the outputs of %s were not recorded: %s", self.path.parent, error)
            return {}

    def _start(self) -> None:
        """Take the save_dir and write the `running` sheet; an unwritable save_dir is one line."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._save_lock.acquire()
        except OSError as fault:
            raise LockFileError(
                f"the run did not start: {write_fault(fault, self.path.parent)}"
            ) from fault
        try:
            sweep_save_dir(self.path.parent)
            replacing = preserve_previous(self.path.parent, self.path) is not None
            self._write_inputs(self._manifests)
            self._pin_snapshots()
            # Over an earlier sheet, the `running` one must be on disk before the task
            # touches that run's outputs: a crash must not leave the earlier `succeeded`
            # claim standing over half-rewritten files. In a fresh save_dir a lost or
            # torn `running` sheet only means "not run yet": no fsync needed.
            dump(self.lock, self.path, durable=replacing)
        except OSError as fault:
            self._save_lock.release()
            raise LockFileError(
                f"the run did not start: {write_fault(fault, self.path)}"
            ) from fault
        except BaseException:
            self._save_lock.release()
            raise

    def _write_inputs(self, manifests: Mapping[str, str]) -> None:
        """Keep the file manifest of each directory/glob input next to the sheet, for verify."""
        if not self.options.manifests:
            return
        for key, text in manifests.items():
            write_atomic(
                manifest_path(self.path.parent, key), text.encode("utf-8", "surrogateescape")
            )

    def _pin_snapshots(self) -> None:
        """Keep each snapshot commit reachable (one ref per commit) and list the save_dir."""
        from flexlock.core._git_snapshot import keep_snapshot

        for record in self._code.values():
            if record.snapshot is None or (record.snapshot, self.lock.id) in self._pinned:
                continue
            keep_snapshot(record, self.lock.id, save_dir=self.path.parent)
            self._pinned.add((record.snapshot, self.lock.id))


def active_run(path: PathLike | None = None) -> Run | None:
    """Return the run active in this context (for `path`'s run.lock, or the only one), if any."""
    active = _active.get()
    if path is not None:
        return active.get(
            lock_path(path).resolve() if Path(path).is_dir() else Path(path).resolve()
        )
    return next(iter(active.values())) if len(active) == 1 else None


def runlock(
    config: Any = None,
    repos: Iterable[PathLike] | None = None,
    data: Iterable[PathLike] = (),
    prevs: Iterable[PathLike] = (),
    runlock_path: PathLike | None = None,
    *,
    outputs: Iterable[PathLike] = (),
    **options: Any,
) -> Run:
    """Record this run's sheet: config, exact code state, data hashes and upstream sheets.

    Writes `run.lock` with status `running` now; the context-manager form
    (`with runlock(...) as run:`) finalises it when the block ends, a plain call
    at interpreter exit (`succeeded`) or on an uncaught exception (`failed`).
    Inside an active run for the same run.lock, amends that run instead.

    Args:
        config: attrs instance, dataclass, dict, or plain class/instance with class attributes.
        repos: git checkouts to record; None records the calling script's repository.
        data: files, directories or globs to hash.
        prevs: upstream run directories (or their run.lock files); each must have succeeded.
        runlock_path: where to write; defaults to `<config.save_dir>/run.lock`.
        outputs: files or directories outside the save_dir that the run writes; with
            everything the run leaves in its save_dir, they are hashed into the sheet's
            `outputs` when it finishes (not part of the identity).
        **options: see `RunOptions` (algorithm, size_limit, include, exclude, redact, ...).

    Raises:
        ConfigError: no save_dir / runlock_path, or an unknown option.
        GitError: a repo is not a git checkout or cannot be captured.
        HashError: a data input does not exist or cannot be read.
        LockFileError: an upstream sheet is missing, unreadable or not succeeded.
        RunInProgressError: another live run holds the save_dir.
    """
    from flexlock.core._registry import registered

    repos = None if repos is None else [*repos]  # read twice: the project's settings, capture
    run_options = RunOptions.from_kwargs(options).with_project_algorithm(repos)
    redactor = run_options.redactor
    plain = config_to_dict(config)
    only_active = active_run() if config is None and runlock_path is None else None
    if only_active is not None:
        # `runlock(data=..., prevs=...)` inside a run started by @clicfg: amend that run.
        runlock_path = only_active.path
    lock_file, save_dir = _resolve_lock_file(plain, runlock_path)
    extra = registered()
    data = [*data]
    data += [path for path in extra.data if path not in {os.fspath(d) for d in data}]
    prevs = [*prevs]
    prevs += [path for path in extra.prevs if path not in {os.fspath(p) for p in prevs}]
    outputs = [*outputs]
    outputs += [path for path in extra.outputs if path not in {os.fspath(o) for o in outputs}]

    current = _active.get().get(lock_file.resolve())
    if current is not None and current.status == "running":
        current.amend(repos=repos, data=data, prevs=prevs, config=config, outputs=outputs)
        with current._mutex:
            current._borrowed += 1
        return current

    from flexlock.core._env import capture_env

    run = Run(
        path=lock_file,
        save_dir=save_dir,
        config=redactor(plain),
        code=capture_repos(repos, run_options, save_dir=lock_file.parent),
        data=hash_data(data, run_options),
        prevs=load_prevs(prevs),
        env=capture_env(redactor=redactor, packages=run_options.packages),
        options=run_options,
        outputs=outputs,
    )
    run._secrets = frozenset(redactor.secret_values(plain))
    run._start()
    _active.set(MappingProxyType({**_active.get(), lock_file.resolve(): run}))
    if run_options.finalize_at_exit:
        unfinished[id(run)] = run
        install_hooks()
    return run
