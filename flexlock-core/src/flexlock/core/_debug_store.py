"""Keep a failed worker's variables on disk next to its run sheet, and load them back.

Workers (joblib, Slurm) cannot be interactive: `save_failure_locals` writes the
locals of the failing frame under ``<save_dir>/.flexlock/debug`` (one pickle per
variable, cloudpickle when installed, and an ``index.json`` describing the frame,
the exception and every variable), and `load_debug_locals` brings them back into
a session later; ``flexlock debug RUN_DIR`` shows the index.

The index format (``flexlock_debug: 1``)::

    {"flexlock_debug": 1, "created": "2026-11-26T12:00:00Z", "python": "3.12.1",
     "exception": {"type", "message", "traceback"},
     "frame": {"function", "file", "line"},
     "frames": [{"function", "file", "line", "user_code"}, ...],
     "variables": {name: {"type", "repr", "file"?, "pickler"?, "size"?, "unpickled"?}}}
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from flexlock.core._debug_frames import (
    CapturedFrame,
    FrameList,
    captured_frames,
    default_index,
    target_namespace,
)
from flexlock.core._debug_seal import is_sealed, seal
from flexlock.core._errors import ConfigError, FlexLockError
from flexlock.core._switches import DEBUG_ENV, note
from flexlock.core._system import unique_directory, utc_now

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "DEBUG_DIR",
    "MAX_TOTAL_BYTES",
    "MAX_VARIABLE_BYTES",
    "find_debug_dir",
    "load_debug_locals",
    "read_debug_index",
    "save_failure_locals",
]

#: Where `save_failure_locals` writes, relative to the run's save_dir.
DEBUG_DIR = ".flexlock/debug"
_INDEX = "index.json"
_INDEX_FORMAT = 1
#: A variable whose pickle would exceed this is saved as repr only.
MAX_VARIABLE_BYTES = 64 * 1024 * 1024
#: Once the pickles of one save reach this, the remaining variables get repr only.
MAX_TOTAL_BYTES = 256 * 1024 * 1024
_MAX_REPR_CHARS = 2000


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
    from pathlib import Path

    try:
        frames = captured_frames(error)
        if not frames:
            note(f"no frame to save in the traceback of {type(error).__name__}")
            return None
        frame = frames[default_index(frames)]
        target = Path(directory) / DEBUG_DIR
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = unique_directory(target.parent, ".debug-tmp-")
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
        note(f"could not save the failed frame's variables in {directory}: {problem!r}")
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
        "created": utc_now(),
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
    seal(staging)  # what load_debug_locals requires before it unpickles anything


def _replace_directory(staging: Path, target: Path) -> None:
    """Swap `staging` in as `target`; readers see the old or the new save, never a mix."""
    import shutil

    old = None
    if target.exists():
        old = unique_directory(target.parent, ".debug-old-")
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
            f"with {DEBUG_ENV}=1 set"
        )
    found = sorted(
        str(index.parent.parent.parent) for index in run.glob(f"**/{DEBUG_DIR}/{_INDEX}")
    )
    hint = (
        "; saved locals exist in: " + ", ".join(found[:10]) + (" ..." if len(found) > 10 else "")
        if found
        else f"; they are saved when a task fails with {DEBUG_ENV}=1 set"
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
    run_dir: str | os.PathLike[str],
    namespace: dict[str, Any] | None = None,
    *,
    trust_pickles: bool = False,
) -> dict[str, Any]:
    """Load the variables a failed task saved in `run_dir` into `namespace`.

    `namespace` defaults to IPython's ``user_ns`` when IPython runs, else
    ``__main__``. Variables saved as repr only, or whose pickle no longer loads
    (a class that moved, a missing package), are reported on stderr and left out.
    Loading runs pickle, which can execute code: only a save that this user's
    flexlock wrote (its seal checks, see `_debug_seal`) is loaded, unless
    `trust_pickles` says the pickles' origin is trusted anyway.

    Returns:
        The variables that were loaded, by name.

    Raises:
        FlexLockError: nothing was saved in `run_dir`.
        ConfigError: the save was not written by flexlock here (pulled, copied from
            another user or machine, or edited) and `trust_pickles` is false.
    """
    import pickle

    debug_dir = find_debug_dir(run_dir)
    index = read_debug_index(run_dir)
    if not trust_pickles and not is_sealed(debug_dir):
        raise ConfigError(
            f"{debug_dir}: these saved variables were not written by flexlock for this user "
            "on this machine (pulled, copied or edited since), and loading a pickle can run "
            "arbitrary code; load them only if you trust where they came from: "
            "flexlock debug RUN_DIR --shell --trust-pickles, or "
            "load_debug_locals(..., trust_pickles=True)"
        )
    loaded: dict[str, Any] = {}
    missing: list[str] = []
    for name, entry in index.get("variables", {}).items():
        file = entry.get("file")
        if not file:
            missing.append(f"{name} ({entry.get('unpickled', 'not pickled')})")
            continue
        try:
            with (debug_dir / file).open("rb") as handle:
                # Sealed by this user's flexlock, or trusted explicitly (trust_pickles).
                loaded[name] = pickle.load(handle)  # noqa: S301
        except Exception as problem:  # one bad pickle must not hide the rest
            missing.append(f"{name} ({type(problem).__name__}: {problem})")
    target = namespace if namespace is not None else target_namespace()
    target.update(loaded)
    frame = index.get("frame", {})
    where = f"{frame.get('function')} ({frame.get('file')}:{frame.get('line')})"
    message = f"loaded {', '.join(loaded) or 'nothing'} from {where}"
    if missing:
        message += f"; not loaded: {', '.join(missing)}"
    note(message)
    return loaded
