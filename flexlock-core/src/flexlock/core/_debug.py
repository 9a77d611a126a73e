"""`@unsafe_debug`: keep a failed function's variables, in your session or on disk.

Off unless the environment variable ``FLEXLOCK_DEBUG`` is set when the failure
happens. Then, depending on its value:

* ``inject``: the locals of the innermost frame of *your* code (not the standard
  library, site-packages or flexlock) are copied into the interactive namespace
  (IPython's ``user_ns`` when IPython runs, else ``__main__``), and the exception
  is re-raised unchanged. ``debug_frames()``, ``debug_up()`` and ``debug_down()``
  then move between the captured frames.
* ``pdb``: a post-mortem debugger opens at that frame, then the exception is
  re-raised.
* any other true value (``1``, ``true``, ...): ``inject`` in an interactive session
  (IPython, Jupyter, ``python -i``), ``pdb`` when stdin is a terminal, otherwise
  (a worker, a batch job) only a note on stderr.

Workers cannot be interactive: `save_failure_locals` writes the failing frame's
locals next to the run's sheet and `load_debug_locals` brings them back later.

Stdlib only; cloudpickle is used when it is installed. Everything here runs
inside an exception handler, so the helpers report problems on stderr rather
than raise a second error over the user's.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, NamedTuple, TypeVar, cast, overload

from flexlock.core._errors import FlexLockError

if TYPE_CHECKING:
    from pathlib import Path
    from types import FrameType, TracebackType

# Only what `import flexlock.core` already loads is imported at module level:
# inspect, dataclasses, json, tempfile... would add tens of milliseconds to every
# script that imports unsafe_debug, so each is imported where it is used.

__all__ = [
    "CapturedFrame",
    "FrameList",
    "debug_down",
    "debug_enabled",
    "debug_exception",
    "debug_frames",
    "debug_up",
    "load_debug_locals",
    "save_failure_locals",
    "unsafe_debug",
]

_F = TypeVar("_F", bound=Callable[..., Any])

ENV_VAR = "FLEXLOCK_DEBUG"
_OFF_VALUES = frozenset({"", "0", "false", "no", "off"})
_AUTO_VALUES = frozenset({"1", "true", "yes", "on", "auto"})
_MODES = ("inject", "pdb")

#: Where `save_failure_locals` writes, relative to the run's save_dir.
DEBUG_DIR = ".flexlock/debug"
_INDEX = "index.json"
_INDEX_FORMAT = 1
#: A variable whose pickle would exceed this is saved as repr only.
MAX_VARIABLE_BYTES = 64 * 1024 * 1024
#: Once the pickles of one save reach this, the remaining variables get repr only.
MAX_TOTAL_BYTES = 256 * 1024 * 1024
_MAX_REPR_CHARS = 2000
#: IPython's own names: overwriting them would break the shell's history.
_PROTECTED_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "_ih", "_oh", "_dh"})
_MISSING: Any = object()
_HANDLED = "__flexlock_debug_handled__"


# --- the decorator ---------------------------------------------------------------


@overload
def unsafe_debug(func: _F) -> _F: ...
@overload
def unsafe_debug(func: None = None) -> Callable[[_F], _F]: ...
def unsafe_debug(func: _F | None = None) -> _F | Callable[[_F], _F]:
    """Keep `func`'s variables when it fails and ``FLEXLOCK_DEBUG`` is set.

    Works on functions, methods, generator functions, coroutine functions and
    async generator functions, and stacks with ``@clicfg`` in either order. With
    ``FLEXLOCK_DEBUG`` unset (it is read when the failure happens), the call
    returns and raises exactly as undecorated; the only trace is one wrapper
    frame in tracebacks, which IPython and pytest hide.
    """
    import inspect

    if func is None:
        return unsafe_debug  # used as `@unsafe_debug()`
    if isinstance(func, staticmethod | classmethod):
        return cast(_F, type(func)(unsafe_debug(func.__func__)))

    if inspect.isasyncgenfunction(func):
        wrapper: Callable[..., Any] = _wrap_async_generator(func)
    elif inspect.iscoroutinefunction(func):

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            try:
                return await func(*args, **kwargs)
            except (Exception, KeyboardInterrupt) as error:
                _on_failure(error)
                raise

    elif inspect.isgeneratorfunction(func):

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            try:
                return (yield from func(*args, **kwargs))
            except (Exception, KeyboardInterrupt) as error:
                _on_failure(error)
                raise

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # try/except costs nothing until something is raised (3.11+ zero-cost
            # exceptions), so the environment is only read on failure.
            __tracebackhide__ = True
            try:
                return func(*args, **kwargs)
            except (Exception, KeyboardInterrupt) as error:
                _on_failure(error)
                raise

    if not inspect.isfunction(func) and not inspect.ismethod(func):
        # A callable object such as @clicfg's: keep its other attributes (`main.cli`).
        return cast(_F, _CallableProxy(func, wrapper))
    return cast(_F, functools.wraps(func)(wrapper))


class _CallableProxy:
    """A decorated callable object: calls go through the debug wrapper, the rest to it."""

    def __init__(self, wrapped: Callable[..., Any], call: Callable[..., Any]) -> None:
        functools.update_wrapper(self, wrapped)
        self._debug_call = call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        return self._debug_call(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped__, name)

    def __get__(self, instance: Any, owner: Any) -> Any:
        return self if instance is None else functools.partial(self, instance)

    def __repr__(self) -> str:
        return f"<unsafe_debug {self.__wrapped__!r}>"


def _wrap_async_generator(func: Callable[..., Any]) -> Callable[..., Any]:
    # `yield from` does not exist for async generators: forward asend/athrow/aclose
    # by hand, as PEP 380 specifies for the sync case.
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        inner = func(*args, **kwargs)
        try:
            item = await inner.__anext__()
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    await inner.aclose()
                    raise
                except BaseException as thrown:  # forwarded, like yield from
                    item = await inner.athrow(thrown)
                else:
                    item = await inner.asend(sent)
        except StopAsyncIteration:
            return
        except (Exception, KeyboardInterrupt) as error:
            _on_failure(error)
            raise

    return wrapper


def _mode(*, warn: bool = True) -> str | None:
    """Return 'inject', 'pdb', 'auto' or None (off), from FLEXLOCK_DEBUG."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value in _OFF_VALUES:
        return None
    if value in _MODES:
        return value
    if value not in _AUTO_VALUES and warn:
        _note(f"{ENV_VAR}={value!r} is not one of 1, inject, pdb, 0; treating it as 1")
    return "auto"


def debug_enabled() -> bool:
    """Return whether ``FLEXLOCK_DEBUG`` asks for debugging (set and not 0/false/no/off)."""
    return _mode(warn=False) is not None


def debug_exception(error: BaseException) -> None:
    """Do for `error`, caught by your own ``except``, what `unsafe_debug` does on failure.

    Inject or open pdb as ``FLEXLOCK_DEBUG`` says, at the innermost frame of your
    code in `error`'s traceback; nothing when it is unset. Never raises, and
    handles an exception only once, however many decorators and handlers see it.
    """
    _on_failure(error)


def _on_failure(error: BaseException) -> None:
    """Handle a failure that left a decorated function; never raise over `error`."""
    mode = _mode()
    if mode is None:
        return
    try:
        if getattr(error, _HANDLED, False):
            # An outer decorated function (or handler) sees a failure already
            # handled: only widen the frames that debug_up() can reach.
            session = _last.session
            if session is not None and session.error is error:
                session.widen(_captured_frames(error))
            return
        # A mark on the exception, not a module-level reference to it: that would
        # keep every frame's variables alive in a worker that runs on.
        import contextlib  # here: on 3.13 `import flexlock.core` does not load it

        with contextlib.suppress(Exception):  # a class refusing attributes: handled each time
            setattr(error, _HANDLED, True)
        _handle(error, mode)
    except Exception as problem:  # the user's error must stay the one raised
        _note(f"could not keep the variables of the failed call: {problem!r}")


def _handle(error: BaseException, mode: str) -> None:
    frames = _captured_frames(error)
    if not frames:
        _note(f"no frame of your code in the traceback of {type(error).__name__}")
        return
    index = _default_index(frames)
    if mode == "auto":
        if _interactive_namespace() is not None:
            mode = "inject"
        elif _stdin_is_terminal() and not _in_worker_process():
            mode = "pdb"
        else:
            _note(
                f"{type(error).__name__} in {frames[index].where}: not interactive "
                f"(stdin is not a terminal), no debugger opened; set {ENV_VAR}=pdb to force one"
            )
            return
    if mode == "pdb":
        _post_mortem(error, frames[index])
        return
    # Only an injection is kept for debug_up()/debug_down(), until the next failure.
    session = _Session(error=error, frames=frames, index=index)
    _last.session = session
    session.inject(_target_namespace(), reason=f"{type(error).__name__} in")


# --- frames ------------------------------------------------------------------------


class CapturedFrame(NamedTuple):
    """One frame of a failed call: where it was and its local variables."""

    function: str
    filename: str
    lineno: int
    user_code: bool
    locals: Mapping[str, Any]
    frame: FrameType | None = None

    @property
    def where(self) -> str:
        """Return ``function (file:line)``."""
        return f"{self.function} ({self.filename}:{self.lineno})"

    def __repr__(self) -> str:
        # Leave out the variables: a repr must stay readable with a 1 GB array in them.
        return f"CapturedFrame({self.where}, {len(self.locals)} variables)"


class FrameList(tuple[CapturedFrame, ...]):
    """The frames of the last failure, outermost first; its repr marks the selected one."""

    selected: int = -1

    def __repr__(self) -> str:
        if not self:
            return "no failure captured (decorate with @unsafe_debug and set FLEXLOCK_DEBUG=1)"
        lines = []
        for number, frame in enumerate(self):
            marker = ">" if number == self.selected else " "
            library = "" if frame.user_code else "  [library]"
            lines.append(f"{marker} {number}: {frame.where}{library}")
        return "\n".join(lines)


def _library_prefixes() -> tuple[str, ...]:
    """Directories whose code is not the user's: stdlib, site-packages, flexlock itself."""
    import site
    import sysconfig

    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    try:
        paths.update(site.getsitepackages())
        paths.add(site.getusersitepackages())
    except AttributeError:  # site may be a stripped-down copy (virtualenv<20)
        pass
    flexlock = sys.modules.get("flexlock")
    paths.update(getattr(flexlock, "__path__", ()))
    prefixes = {_as_prefix(path) for path in paths}
    prefixes.update(_as_prefix(os.path.realpath(path)) for path in paths)
    return tuple(sorted(prefixes))


def _as_prefix(path: str) -> str:
    """Return `path` absolute with a trailing separator, for `str.startswith` tests."""
    # os.path on purpose: code objects hold plain strings, and one prefix test per
    # frame must stay cheap (Path.resolve would also hit the filesystem).
    return os.path.join(os.path.abspath(path), "")  # noqa: PTH100, PTH118


def _is_flexlock_file(filename: str) -> bool:
    flexlock = sys.modules.get("flexlock")
    return _as_prefix(filename).startswith(
        tuple(_as_prefix(path) for path in getattr(flexlock, "__path__", ()))
    )


def _is_user_file(filename: str, prefixes: tuple[str, ...]) -> bool:
    if filename.startswith("<frozen"):
        return False
    if filename.startswith("<"):  # <stdin>, <string>, <ipython-input-…>: typed by the user
        return True
    return not _as_prefix(filename).startswith(prefixes)


def _walk(tb: TracebackType | None) -> Iterator[TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _captured_frames(error: BaseException) -> FrameList:
    """Return the frames of `error`'s traceback worth showing, outermost first.

    Flexlock's own frames (this wrapper, @clicfg, the task runner) are dropped.
    A FlexLockError raised `from` the user's error is skipped for its cause, and
    when no user frame is left the cause or context is used instead.
    """
    prefixes = _library_prefixes()
    seen: set[int] = set()
    current: BaseException | None = error
    first: FrameList | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, FlexLockError) and current.__cause__ is not None:
            # flexlock's own wrapper of the user's error: the cause holds the frame.
            current = current.__cause__
            continue
        frames = FrameList(
            CapturedFrame(
                function=tb.tb_frame.f_code.co_name,
                filename=tb.tb_frame.f_code.co_filename,
                lineno=tb.tb_lineno,
                user_code=_is_user_file(tb.tb_frame.f_code.co_filename, prefixes),
                locals=dict(tb.tb_frame.f_locals),
                frame=tb.tb_frame,
            )
            for tb in _walk(current.__traceback__)
            if not _is_flexlock_file(tb.tb_frame.f_code.co_filename)
            and not tb.tb_frame.f_locals.get("__tracebackhide__", False)
        )
        if first is None:
            first = frames
        if any(frame.user_code for frame in frames):
            return frames
        current = current.__cause__ or current.__context__
    return first if first is not None else FrameList()


def _default_index(frames: FrameList) -> int:
    """Return the innermost user frame, else the innermost frame."""
    for number in range(len(frames) - 1, -1, -1):
        if frames[number].user_code:
            return number
    return len(frames) - 1


# --- the session: the last failure and what was injected ------------------------------


class _Session:
    """The injected failure: its frames, the selected one, and what was injected where."""

    def __init__(self, error: BaseException, frames: FrameList, index: int) -> None:
        self.error, self.frames, self.index = error, frames, index
        self.namespace: dict[str, Any] | None = None
        self.injected: dict[str, Any] = {}
        self.previous: dict[str, Any] = {}

    def widen(self, frames: FrameList) -> None:
        """Take a longer view of the same failure, keeping the selected frame."""
        selected = self.frames[self.index].frame
        for number, frame in enumerate(frames):
            if frame.frame is selected:
                self.frames, self.index = frames, number
                return

    def undo(self) -> None:
        """Remove what the last injection added and put back what it overwrote."""
        namespace = self.namespace
        if namespace is not None:
            for name, value in self.injected.items():
                if namespace.get(name, _MISSING) is not value:
                    continue  # the user re-assigned it since: theirs now
                if self.previous[name] is _MISSING:
                    del namespace[name]
                else:
                    namespace[name] = self.previous[name]
        self.injected, self.previous, self.namespace = {}, {}, None

    def inject(self, namespace: dict[str, Any], *, reason: str) -> None:
        """Copy the selected frame's locals into `namespace` and say so on stderr."""
        self.undo()
        frame = self.frames[self.index]
        overwritten, skipped = [], []
        for name, value in frame.locals.items():
            if name.startswith("__") and name.endswith("__"):
                continue
            if name in _PROTECTED_NAMES:
                skipped.append(name)
                continue
            before = namespace.get(name, _MISSING)
            if before is not _MISSING and before is not value:
                overwritten.append(name)
            self.previous[name] = before
            self.injected[name] = value
            namespace[name] = value
        self.namespace = namespace
        names = ", ".join(self.injected) or "(none)"
        message = f"{reason} {frame.where}: variables {names} are in your namespace"
        if overwritten:
            message += f"; overwrote {', '.join(overwritten)}"
        if skipped:
            message += f"; kept your {', '.join(skipped)}"
        if len(self.frames) > 1:
            message += "; debug_up()/debug_down() move, debug_frames() lists"
        _note(message)


class _Last:
    """The last captured failure (one per process, like sys.last_exc)."""

    session: _Session | None = None


_last = _Last()


def _require_session() -> _Session:
    session = _last.session
    if session is None:
        raise FlexLockError(
            "no failure captured yet: decorate the function with @unsafe_debug and set "
            f"{ENV_VAR}=1 before it fails"
        )
    return session


def debug_frames() -> FrameList:
    """Return the frames of the last captured failure, outermost first.

    Its repr lists them with ``>`` at the frame whose variables are in your
    namespace; each item has ``function``, ``filename``, ``lineno`` and ``locals``.
    """
    session = _last.session
    if session is None:
        return FrameList()
    frames = FrameList(session.frames)
    frames.selected = session.index
    return frames


def debug_up(count: int = 1) -> CapturedFrame:
    """Move `count` frames towards the caller and put that frame's variables in your namespace.

    Like pdb's ``up``. Variables the previous frame added are removed and the
    ones it overwrote are restored first, unless you re-assigned them.
    """
    return _move(-count)


def debug_down(count: int = 1) -> CapturedFrame:
    """Move `count` frames towards where the exception was raised (pdb's ``down``)."""
    return _move(count)


def _move(step: int) -> CapturedFrame:
    session = _require_session()
    target = min(max(session.index + step, 0), len(session.frames) - 1)
    if target == session.index:
        end = "outermost" if step < 0 else "innermost"
        _note(f"already at the {end} frame: {session.frames[target].where}")
        return session.frames[target]
    session.index = target
    session.inject(_target_namespace(), reason=f"frame {target}:")
    return session.frames[target]


# --- where variables go -------------------------------------------------------------


def _ipython_namespace() -> dict[str, Any] | None:
    # Only if IPython is already imported: importing it here would cost a second
    # and start nothing useful outside a running shell.
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return None if shell is None else cast(dict[str, Any], shell.user_ns)


def _interactive_namespace() -> dict[str, Any] | None:
    """Return the namespace of a running interactive session, or None."""
    namespace = _ipython_namespace()
    if namespace is not None:
        return namespace
    if sys.flags.interactive or hasattr(sys, "ps1"):  # python -i, or the plain REPL
        return vars(sys.modules["__main__"])
    return None


def _target_namespace() -> dict[str, Any]:
    namespace = _ipython_namespace()
    return namespace if namespace is not None else vars(sys.modules["__main__"])


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdin
        return False


def _in_worker_process() -> bool:
    """Whether this is a multiprocessing child, whose terminal belongs to its parent."""
    multiprocessing = sys.modules.get("multiprocessing")
    return multiprocessing is not None and multiprocessing.parent_process() is not None


def _note(message: str) -> None:
    import contextlib

    with contextlib.suppress(Exception):  # a closed stderr must not hide the user's error
        print(f"flexlock debug: {message}", file=sys.stderr, flush=True)


def _post_mortem(error: BaseException, frame: CapturedFrame) -> None:
    """Open pdb on `error`'s traceback, starting at `frame` instead of the innermost one."""
    import pdb

    class _Pdb(pdb.Pdb):
        def get_stack(
            self, f: FrameType | None, t: TracebackType | None
        ) -> tuple[list[tuple[FrameType, int]], int]:
            stack, index = super().get_stack(f, t)
            for number, (candidate, _) in enumerate(stack):
                if candidate is frame.frame:
                    return stack, number
            return stack, index

    _note(f"{type(error).__name__} in {frame.where}: post-mortem debugger (q quits)")
    debugger = _Pdb()
    debugger.reset()
    debugger.interaction(None, error.__traceback__)


# --- worker failures: save to disk, load later ----------------------------------------


class _LimitedFile:
    """A write-only file that refuses to grow past `limit` bytes."""

    def __init__(self, handle: IO[bytes], limit: int) -> None:
        self._handle, self._limit, self.size = handle, limit, 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self._limit:
            raise _TooLargeError
        return self._handle.write(data)


class _TooLargeError(Exception):
    pass


def _qualified_type(value: object) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _safe_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as problem:  # a broken __repr__ must not lose the rest
        return f"<repr failed: {problem!r}>"
    if len(text) > _MAX_REPR_CHARS:
        text = text[:_MAX_REPR_CHARS] + f"... ({len(text)} characters)"
    return text


def _safe_str(value: object) -> str:
    try:
        return str(value)[:_MAX_REPR_CHARS]
    except Exception:  # a broken __str__ must not lose the rest
        return _safe_repr(value)


def _pickle_to(path: Path, value: object, limit: int) -> tuple[str, int]:
    """Pickle `value` into `path` (cloudpickle if installed); return (pickler, size)."""
    import pickle

    try:
        import cloudpickle  # optional: pickles lambdas, local classes, __main__ objects

        dump: Callable[..., None] = cloudpickle.dump
        pickler = "cloudpickle"
    except ImportError:
        dump, pickler = pickle.dump, "pickle"
    with path.open("wb") as handle:
        limited = _LimitedFile(handle, limit)
        dump(value, limited, protocol=pickle.HIGHEST_PROTOCOL)
    return pickler, limited.size


def save_failure_locals(
    error: BaseException,
    directory: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_VARIABLE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Path | None:
    """Save the locals of `error`'s innermost user frame under ``directory/.flexlock/debug``.

    Each variable is pickled on its own (cloudpickle when installed, else pickle)
    up to `max_bytes`, and all of them up to `max_total_bytes`; one that cannot
    be pickled, or does not fit, keeps only its type and repr. ``index.json``
    records the frame, the exception and the traceback. A previous save in the
    same directory is replaced.

    Never raises: called while handling a failure, a problem here is printed on
    stderr and None returned.

    Returns:
        The debug directory, or None when nothing could be saved.
    """
    import shutil
    import tempfile
    from pathlib import Path

    try:
        frames = _captured_frames(error)
        if not frames:
            _note(f"no frame to save in the traceback of {type(error).__name__}")
            return None
        frame = frames[_default_index(frames)]
        target = Path(directory) / DEBUG_DIR
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".debug-tmp-", dir=target.parent))
        try:
            _write_debug_dir(
                staging,
                error,
                frame=frame,
                frames=frames,
                max_bytes=max_bytes,
                max_total_bytes=max_total_bytes,
            )
            _replace_directory(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except Exception as problem:  # never fail the failure path
        _note(f"could not save the failed frame's variables in {directory}: {problem!r}")
        return None
    return target


def _write_debug_dir(
    staging: Path,
    error: BaseException,
    *,
    frame: CapturedFrame,
    frames: FrameList,
    max_bytes: int,
    max_total_bytes: int,
) -> None:
    import json
    import traceback
    from datetime import datetime, timezone

    variables: dict[str, dict[str, Any]] = {}
    remaining = max_total_bytes
    for number, (name, value) in enumerate(frame.locals.items()):
        if name.startswith("__") and name.endswith("__"):
            continue
        entry: dict[str, Any] = {"type": _qualified_type(value), "repr": _safe_repr(value)}
        path = staging / f"{number:04d}.pkl"
        limit = min(max_bytes, remaining)
        try:
            entry["pickler"], entry["size"] = _pickle_to(path, value, limit)
            entry["file"] = path.name
            remaining -= entry["size"]
        except _TooLargeError:
            path.unlink(missing_ok=True)
            entry["unpickled"] = (
                f"larger than {max_bytes} bytes"
                if limit == max_bytes
                else f"over the {max_total_bytes} bytes of all variables"
            )
        except Exception as problem:  # any __reduce__ may fail: keep the repr
            path.unlink(missing_ok=True)
            entry["unpickled"] = f"{type(problem).__name__}: {problem}"
        variables[name] = entry
    index = {
        "flexlock_debug": _INDEX_FORMAT,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "exception": {
            "type": _qualified_type(error),
            "message": _safe_str(error),
            "traceback": "".join(traceback.format_exception(error)),
        },
        "frame": {"function": frame.function, "file": frame.filename, "line": frame.lineno},
        "frames": [
            {"function": f.function, "file": f.filename, "line": f.lineno, "user_code": f.user_code}
            for f in frames
        ],
        "python": sys.version.split()[0],
        "variables": variables,
    }
    (staging / _INDEX).write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n")


def _replace_directory(staging: Path, target: Path) -> None:
    """Swap `staging` in as `target`; readers see the old or the new save, never a mix."""
    import shutil
    import tempfile
    from pathlib import Path

    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=".debug-old-", dir=target.parent))
        target.replace(old / "debug")
    staging.replace(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def find_debug_dir(run_dir: str | os.PathLike[str]) -> Path:
    """Return the saved-locals directory of `run_dir` (a run directory or its run.lock).

    Raises:
        FlexLockError: nothing was saved there; the message lists runs below
            `run_dir` that have saved locals (task subdirectories).
    """
    from pathlib import Path

    run = Path(run_dir)
    if run.is_file():
        run = run.parent
    debug_dir = run / DEBUG_DIR
    if (debug_dir / _INDEX).is_file():
        return debug_dir
    if not run.is_dir():
        raise FlexLockError(
            f"{run_dir}: no such run directory; give the save_dir of a run that failed "
            f"with {ENV_VAR}=1 set"
        )
    found = sorted(
        str(index.parent.parent.parent) for index in run.glob(f"**/{DEBUG_DIR}/{_INDEX}")
    )
    hint = (
        "; saved locals exist in: " + ", ".join(found[:10]) + (" ..." if len(found) > 10 else "")
        if found
        else f"; they are saved when a task fails with {ENV_VAR}=1 set"
    )
    raise FlexLockError(f"{run_dir}: no saved failure locals ({debug_dir} is missing){hint}")


def read_debug_index(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the ``index.json`` of `run_dir`'s saved locals.

    Raises:
        FlexLockError: nothing was saved, or the index is unreadable.
    """
    import json

    path = find_debug_dir(run_dir) / _INDEX
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError) as problem:
        raise FlexLockError(f"{path}: cannot read saved locals ({problem})") from problem
    if not isinstance(index, dict) or index.get("flexlock_debug") != _INDEX_FORMAT:
        raise FlexLockError(
            f"{path}: unknown saved-locals format {index.get('flexlock_debug')!r} "
            f"(this flexlock reads {_INDEX_FORMAT}); upgrade flexlock-core"
        )
    return index


def load_debug_locals(
    run_dir: str | os.PathLike[str], namespace: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Load the variables a failed task saved in `run_dir` into `namespace`.

    `namespace` defaults to IPython's ``user_ns`` when IPython runs, else
    ``__main__``. Variables saved as repr only, or whose pickle no longer loads
    (a class that moved, a missing package), are reported on stderr and left out.
    Loading runs pickle: only load runs you trust, as for any pickle.

    Returns:
        The variables that were loaded, by name.

    Raises:
        FlexLockError: nothing was saved in `run_dir`.
    """
    import pickle

    debug_dir = find_debug_dir(run_dir)
    index = read_debug_index(run_dir)
    loaded: dict[str, Any] = {}
    missing: list[str] = []
    for name, entry in index.get("variables", {}).items():
        file = entry.get("file")
        if not file:
            missing.append(f"{name} ({entry.get('unpickled', 'not pickled')})")
            continue
        try:
            with (debug_dir / file).open("rb") as handle:
                # The user's own run wrote it; documented as pickle-trusting.
                loaded[name] = pickle.load(handle)  # noqa: S301
        except Exception as problem:  # one bad pickle must not hide the rest
            missing.append(f"{name} ({type(problem).__name__}: {problem})")
    target = namespace if namespace is not None else _target_namespace()
    target.update(loaded)
    frame = index.get("frame", {})
    where = f"{frame.get('function')} ({frame.get('file')}:{frame.get('line')})"
    message = f"loaded {', '.join(loaded) or 'nothing'} from {where}"
    if missing:
        message += f"; not loaded: {', '.join(missing)}"
    _note(message)
    return loaded
