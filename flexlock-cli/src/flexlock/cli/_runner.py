"""Running one config: record its run sheet, capture its output, report how it ended.

`RunTask` (the `TaskRunner` of the executor contract) is what executors send to
workers: it rebuilds one task's config there. It is picklable by plain
`pickle`: it names the decorated function by module and qualified name (or by
script path when it lives in `__main__`, re-importing the script under another
module name so its `if __name__ == "__main__":` block does not run again) and
carries the merged config as plain data.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs

from flexlock.cli._config import ConfigTree, to_plain
from flexlock.cli._contract import Task, TaskResult
from flexlock.cli._render import resolve
from flexlock.cli._runlog import LOG_NAMES, captured_output
from flexlock.core import FlexLockError, clear_registered

__all__ = [
    "LOG_NAMES",
    "CodeFlags",
    "ConfiguredFunction",
    "FunctionRef",
    "RunTask",
    "captured_output",
    "error_summary",
    "execute",
    "print_user_traceback",
    "run_config",
    "save_dir_of",
    "save_locals",
    "script_repos",
]


@attrs.frozen
class CodeFlags:
    """`--code_include` / `--code_exclude` of the command line: git pathspecs of the code."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def options(self) -> dict[str, tuple[str, ...]]:
        """Return them as `runlock()` / `rerun_reason()` options."""
        return {"include": self.include, "exclude": self.exclude}


_SCRIPT_MODULE = "__flexlock_script__"
R = TypeVar("R")


class ConfiguredFunction(Protocol):
    """What running needs of a `@clicfg` function (a `CliFunction`).

    Typing `_runner` and `_tasks` against this, not the decorator, keeps them below it.
    """

    @property
    def function(self) -> Callable[[Any], Any]:
        """The user's `main(cfg)`, undecorated."""
        ...

    @property
    def config_class(self) -> type:
        """The class its config is built as."""
        ...


@attrs.frozen
class FunctionRef:
    """Where a `@clicfg` function can be imported from, in this process or a worker."""

    module: str
    qualname: str
    script: str | None = None  # absolute path, when the function lives in a script (__main__)

    @classmethod
    def of(cls, function: Any) -> FunctionRef:
        """Return the reference of a decorated function."""
        module = function.__module__
        script = None
        if module in {"__main__", _SCRIPT_MODULE}:
            code = getattr(function, "__code__", None)
            filename = code.co_filename if code else getattr(sys.modules[module], "__file__", None)
            script = str(Path(filename).resolve()) if filename else None
        return cls(module=module, qualname=function.__qualname__, script=script)

    def load(self) -> ConfiguredFunction:
        """Import and return the decorated function (a `CliFunction`)."""
        module = self._module()
        target: Any = module
        for part in self.qualname.split("."):
            target = getattr(target, part)
        return target  # type: ignore[no-any-return]

    def _module(self) -> Any:
        if self.script is None:
            return importlib.import_module(self.module)
        for name in ("__main__", _SCRIPT_MODULE):
            loaded = sys.modules.get(name)
            file = getattr(loaded, "__file__", None)
            if file and Path(file).resolve() == Path(self.script):
                return loaded
        # A worker process: import the script as a module; its main block stays unrun.
        directory = str(Path(self.script).parent)
        if directory not in sys.path:
            sys.path.insert(0, directory)  # as `python script.py` does, for sibling imports
        spec = importlib.util.spec_from_file_location(_SCRIPT_MODULE, self.script)
        if spec is None or spec.loader is None:
            raise FlexLockError(f"cannot import the script {self.script}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[_SCRIPT_MODULE] = module
        spec.loader.exec_module(module)
        return module


def error_summary(error: BaseException, frames: int = 3) -> str:
    """Summarise an exception in one paragraph: type, message and where it was raised."""
    own = str(Path(__file__).resolve().parents[1])  # flexlock's frames say nothing to the user
    frames_all = traceback.extract_tb(error.__traceback__)
    summary = [f for f in frames_all if not f.filename.startswith(own)][-frames:] or frames_all[-1:]
    where = "; ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in summary)
    message = str(error).strip().replace("\n", " ")
    return f"{type(error).__name__}: {message}" + (f" (at {where})" if where else "")


def _flexlock_directories() -> tuple[str, ...]:
    """Return the source directories of the loaded flexlock distributions (cli, core, ...)."""
    names = ("flexlock.cli", "flexlock.core", "flexlock.slurm", "flexlock.mlflow")
    files = (getattr(sys.modules.get(name), "__file__", None) for name in names)
    return tuple(str(Path(file).resolve().parent) + os.sep for file in files if file)


def print_user_traceback(
    error: BaseException, file: Any = None, redact: Callable[[str], str] = str
) -> None:
    """Print `error`'s traceback with flexlock's own frames left out, unless FLEXLOCK_TRACEBACK.

    The frames of `@clicfg` and the runner come before the user's and say nothing
    about the failure; a line after the traceback says how many were hidden.
    """
    from flexlock.core import traceback_enabled

    stream = sys.stderr if file is None else file
    if traceback_enabled():
        stream.write(redact("".join(traceback.format_exception(error))))
        return
    own = _flexlock_directories()
    hidden = 0
    report = traceback.TracebackException.from_exception(error)
    seen: set[int] = set()
    pending = [report]
    while pending:  # the exception and its causes / contexts
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        frames = [f for f in current.stack if not f.filename.startswith(own)]
        if frames:  # a chain link raised only inside flexlock keeps its frames
            hidden += len(current.stack) - len(frames)
            current.stack = traceback.StackSummary.from_list(frames)
        pending += [link for link in (current.__cause__, current.__context__) if link]
    stream.write(redact("".join(report.format())))
    if hidden:
        stream.write(f"({hidden} flexlock frames hidden; FLEXLOCK_TRACEBACK=1 shows them)\n")


def execute(
    function: Any,
    config: Any,
    plain: Mapping[str, Any],
    save_dir: str | None,
    *,
    repos: Sequence[str] | None,
    capture: bool,
    tee: bool = False,
    code: CodeFlags = CodeFlags(),
) -> Any:
    """Call `function(config)`, recording the run in `save_dir/run.lock` when there is one.

    With `capture`, stdout/stderr go to `save_dir/stdout.log` and `stderr.log`
    (with `tee`, shown as well) and an exception's traceback is written to
    `stderr.log` before it propagates.
    """
    if save_dir is None:
        return function(config)
    from flexlock.core import runlock

    with runlock(
        config=dict(plain), repos=repos, runlock_path=Path(save_dir) / "run.lock", **code.options()
    ) as run:
        if not capture:
            return function(config)
        with captured_output(Path(save_dir), tee=tee):
            try:
                return function(config)
            except BaseException as error:
                print_user_traceback(error, redact=run.redact_text)
                raise


def save_dir_of(config: Any) -> str | None:
    """Return the config's `save_dir` as a string, or None when it has none (or it is empty)."""
    save_dir = getattr(config, "save_dir", None)
    return os.fspath(save_dir) or None if isinstance(save_dir, str | os.PathLike) else None


def run_config(
    function: Callable[[Any], R],
    config: Any,
    code: CodeFlags = CodeFlags(),
    *,
    log: bool = False,
) -> R:
    """Call `function(config)` here; record it when it has a save_dir.

    With `log` (a command-line run), its output is also written to the save_dir's
    stdout.log / stderr.log; otherwise (`main(cfg)` from Python) it is untouched.
    """
    save_dir = save_dir_of(config)
    # The plain (cattrs) form is only needed for the sheet: a run without one skips it.
    plain = to_plain(config) if save_dir else {}
    repos = script_repos(function) if save_dir else None
    return execute(  # type: ignore[no-any-return]
        function, config, plain, save_dir, repos=repos, capture=log, tee=True, code=code
    )


@attrs.frozen
class RunTask:
    """Run one task of a task list in the current process (picklable; sent to workers).

    The `TaskRunner` that `_tasks` gives executors.
    """

    function: FunctionRef
    values: dict[str, Any]  # the merged, not yet interpolated config (plain data)
    origins: dict[str, str]
    repos: tuple[str, ...] | None = None
    capture: bool = True
    code: CodeFlags = CodeFlags()  # --code_include / --code_exclude of the command line
    tee: bool = False  # --tee: show the task's output as well as writing its logs
    now: str | None = None  # the invocation's ${now} time (FLEXLOCK_NOW), for every task
    # The process that built the runner: a worker running a task watches it (see below).
    parent_pid: int = attrs.field(factory=os.getpid, eq=False)

    def tree(self, config_class: type, task: Task) -> ConfigTree:
        """Return the config tree of `task`: the shared values plus the task's overrides."""
        import copy

        tree = ConfigTree.__new__(ConfigTree)
        tree.config_class = config_class
        tree.values = copy.deepcopy(self.values)
        tree.origins = dict(self.origins)
        for key, value in task.overrides:
            tree.set(key, value, task.source)
        return tree

    def __call__(self, task: Task) -> TaskResult:
        """Run `task`; a failure of the user's code is a failed result, never an exception."""
        log_paths = (
            tuple(str(Path(task.save_dir) / name) for name in LOG_NAMES) if task.save_dir else ()
        )
        _accept_sigint()
        if os.getpid() != self.parent_pid and os.getppid() == self.parent_pid:
            # a local worker (loky) of the process that built this task; a Slurm job's
            # parent is slurmstepd, which ends the job itself
            _die_with_parent(self.parent_pid)
        if self.now is not None:  # a reused worker may have started in another invocation
            os.environ["FLEXLOCK_NOW"] = self.now
        plain: dict[str, Any] = {}
        try:
            decorated = self.function.load()
            # Registrations of earlier tasks in this worker are not this task's inputs.
            clear_registered()
            config, plain = resolve(self.tree(decorated.config_class, task), private=True)
            execute(
                decorated.function,
                config,
                plain,
                task.save_dir,
                repos=self.repos,
                capture=self.capture,
                tee=self.tee,
                code=self.code,
            )
        except KeyboardInterrupt:
            raise  # the executor stops; the sheet was finalised `failed` by runlock
        except Exception as error:
            save_locals(error, task.save_dir)
            from flexlock.core import RunOptions

            # the summary is printed and tabled: the config's secret values never are
            redactor = RunOptions().redactor
            summary = redactor.scrub(error_summary(error), redactor.secret_values(plain))
            # A run that did not start (an unwritable save_dir) left no logs to point at.
            kept = tuple(path for path in log_paths if Path(path).is_file())
            return TaskResult(task=task, status="failed", error=summary, log_paths=kept)
        return TaskResult(task=task, status="succeeded", log_paths=log_paths)


def _accept_sigint() -> None:
    """In a worker started with SIGINT blocked (`local` executor): take Ctrl-C again.

    A Ctrl-C that arrived while the worker started is dropped (its parent handles
    it); from now on Ctrl-C interrupts the task, which finalises its sheet.
    """
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not (
        threading.main_thread()
    ):
        return
    if signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set()):
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # drop a pending one
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    handler = previous if previous not in (signal.SIG_IGN, None) else signal.default_int_handler
    signal.signal(signal.SIGINT, handler)


# How often a worker checks that its parent lives, and how long an interrupted task
# may take to finalise its sheet before the worker is killed.
_PARENT_POLL_S = 0.5
_FINALISE_GRACE_S = 5.0
_watched_parent: list[int] = []  # the parent this worker's watchdog watches (at most one)


def _die_with_parent(parent_pid: int) -> None:
    """In a worker process: end it soon after `parent_pid` dies (SIGTERM, kill -9).

    Neither loky nor multiprocessing stops a worker whose task is running when the
    parent is gone, and prctl(PR_SET_PDEATHSIG) fires on the exit of the *thread*
    that started the worker, so a thread polls: once the worker is re-parented, it
    interrupts the task as Ctrl-C does (the sheet is finalised `failed`), then kills
    the worker if it is still there after a grace period.
    """
    import signal
    import threading
    import time

    if _watched_parent:
        return
    _watched_parent.append(parent_pid)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_S)
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(_FINALISE_GRACE_S)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="flexlock-parent-watch", daemon=True).start()


def save_locals(error: BaseException, save_dir: str | None) -> None:
    """Keep the failing frame's variables for `flexlock debug` when FLEXLOCK_DEBUG is set."""
    from flexlock.core import debug_enabled, save_failure_locals

    if save_dir is None or not debug_enabled():
        return
    with contextlib.suppress(Exception):  # debugging aids must never mask the real failure
        save_failure_locals(error, Path(save_dir))


_script_repo_cache: dict[str, tuple[str, ...]] = {}


def script_repos(function: Any) -> tuple[str, ...]:
    """Return the git checkout holding `function`'s source file (one-line warning if none)."""
    from flexlock.core import GitError, run_git

    code = getattr(function, "__code__", None)
    file = code.co_filename if code else None
    directory = (
        str(Path(file).resolve().parent) if file and Path(file).exists() else str(Path.cwd())
    )
    if directory in _script_repo_cache:
        return _script_repo_cache[directory]
    try:
        root = os.fsdecode(run_git(["rev-parse", "--show-toplevel"], directory).stdout).strip()
        repos: tuple[str, ...] = (os.path.relpath(root),)
    except GitError:
        print(
            f"flexlock: warning: {directory} is not in a git repository; the code is not recorded",
            file=sys.stderr,
        )
        repos = ()
    _script_repo_cache[directory] = repos
    return repos
