"""`@unsafe_debug`: keep a failed function's variables in your interactive session.

Off unless the environment variable ``FLEXLOCK_DEBUG`` is set when the failure
happens (`_switches`). Then, depending on its value:

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

Which frames count is `_debug_frames`' job; a worker's failure is kept on disk
by `_debug_store` instead. Everything here runs inside an exception handler, so
problems are reported on stderr rather than raised over the user's error.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from flexlock.core._debug_frames import (
    CapturedFrame,
    FrameList,
    captured_frames,
    default_index,
    interactive_namespace,
    target_namespace,
)
from flexlock.core._errors import FlexLockError
from flexlock.core._switches import DEBUG_ENV, DebugMode, debug_mode, note

if TYPE_CHECKING:
    from types import FrameType, TracebackType

# Only what `import flexlock.core` already loads is imported at module level:
# inspect, pdb, contextlib... would add milliseconds to every script that imports
# unsafe_debug, so each is imported where it is used.

__all__ = [
    "debug_down",
    "debug_exception",
    "debug_frames",
    "debug_up",
    "unsafe_debug",
]

_F = TypeVar("_F", bound=Callable[..., Any])

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


def debug_exception(error: BaseException) -> None:
    """Do for `error`, caught by your own ``except``, what `unsafe_debug` does on failure.

    Inject or open pdb as ``FLEXLOCK_DEBUG`` says, at the innermost frame of your
    code in `error`'s traceback; nothing when it is unset. Never raises, and
    handles an exception only once, however many decorators and handlers see it.
    """
    _on_failure(error)


def _on_failure(error: BaseException) -> None:
    """Handle a failure that left a decorated function; never raise over `error`."""
    mode = debug_mode()
    if mode is None:
        return
    try:
        if getattr(error, _HANDLED, False):
            # An outer decorated function (or handler) sees a failure already
            # handled: only widen the frames that debug_up() can reach.
            session = _last.session
            if session is not None and session.error is error:
                session.widen(captured_frames(error))
            return
        # A mark on the exception, not a module-level reference to it: that would
        # keep every frame's variables alive in a worker that runs on.
        import contextlib  # here: on 3.13 `import flexlock.core` does not load it

        with contextlib.suppress(Exception):  # a class refusing attributes: handled each time
            setattr(error, _HANDLED, True)
        _handle(error, mode)
    except Exception as problem:  # the user's error must stay the one raised
        note(f"could not keep the variables of the failed call: {problem!r}")


def _handle(error: BaseException, mode: DebugMode) -> None:
    frames = captured_frames(error)
    if not frames:
        note(f"no frame of your code in the traceback of {type(error).__name__}")
        return
    index = default_index(frames)
    if mode == "auto":
        if interactive_namespace() is not None:
            mode = "inject"
        elif _stdin_is_terminal() and not _in_worker_process():
            mode = "pdb"
        else:
            note(
                f"{type(error).__name__} in {frames[index].where}: not interactive "
                f"(stdin is not a terminal), no debugger opened; set {DEBUG_ENV}=pdb to force one"
            )
            return
    if mode == "pdb":
        _post_mortem(error, frames[index])
        return
    # Only an injection is kept for debug_up()/debug_down(), until the next failure.
    session = _Session(error=error, frames=frames, index=index)
    _last.session = session
    session.inject(target_namespace(), reason=f"{type(error).__name__} in")


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
        # The navigation helpers come with the variables, so `debug_frames()` works
        # without an import (a name the user or the frame already has is left alone).
        for helper in (debug_frames, debug_up, debug_down):
            namespace.setdefault(helper.__name__, helper)
        names = ", ".join(self.injected) or "(none)"
        message = f"{reason} {frame.where}: variables {names} are in your namespace"
        if overwritten:
            message += f"; overwrote {', '.join(overwritten)}"
        if skipped:
            message += f"; kept your {', '.join(skipped)}"
        if len(self.frames) > 1:
            message += "; debug_up()/debug_down() move, debug_frames() lists"
        note(message)


class _Last:
    """The last captured failure (one per process, like sys.last_exc)."""

    session: _Session | None = None


_last = _Last()


def _require_session() -> _Session:
    session = _last.session
    if session is None:
        raise FlexLockError(
            "no failure captured yet: decorate the function with @unsafe_debug and set "
            f"{DEBUG_ENV}=1 before it fails"
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
        note(f"already at the {end} frame: {session.frames[target].where}")
        return session.frames[target]
    session.index = target
    session.inject(target_namespace(), reason=f"frame {target}:")
    return session.frames[target]


# --- choosing and opening the debugger ---------------------------------------------


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdin
        return False


def _in_worker_process() -> bool:
    """Whether this is a multiprocessing child, whose terminal belongs to its parent."""
    multiprocessing = sys.modules.get("multiprocessing")
    return multiprocessing is not None and multiprocessing.parent_process() is not None


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

    note(f"{type(error).__name__} in {frame.where}: post-mortem debugger (q quits)")
    debugger = _Pdb()
    debugger.reset()
    debugger.interaction(None, error.__traceback__)
