"""What a failure left behind: the frames of its traceback and where their variables go.

Shared by the decorator (`_debug`, which injects a frame's variables or opens pdb
at it) and the store (`_debug_store`, which saves them next to the run's sheet).
A frame is the *user's* when its file is not in the standard library,
site-packages or flexlock itself; flexlock's own frames are left out.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from flexlock.core._errors import FlexLockError

if TYPE_CHECKING:
    from types import FrameType, TracebackType

__all__ = [
    "CapturedFrame",
    "FrameList",
    "captured_frames",
    "default_index",
    "interactive_namespace",
    "target_namespace",
]


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


def captured_frames(error: BaseException) -> FrameList:
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


def default_index(frames: FrameList) -> int:
    """Return the innermost user frame, else the innermost frame."""
    for number in range(len(frames) - 1, -1, -1):
        if frames[number].user_code:
            return number
    return len(frames) - 1


def _ipython_namespace() -> dict[str, Any] | None:
    # Only if IPython is already imported: importing it here would cost a second
    # and start nothing useful outside a running shell.
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return None if shell is None else cast(dict[str, Any], shell.user_ns)


def interactive_namespace() -> dict[str, Any] | None:
    """Return the namespace of a running interactive session, or None."""
    namespace = _ipython_namespace()
    if namespace is not None:
        return namespace
    if sys.flags.interactive or hasattr(sys, "ps1"):  # python -i, or the plain REPL
        return vars(sys.modules["__main__"])
    return None


def target_namespace() -> dict[str, Any]:
    """Return where injected or loaded variables go: IPython's ``user_ns``, else ``__main__``."""
    namespace = _ipython_namespace()
    return namespace if namespace is not None else vars(sys.modules["__main__"])
