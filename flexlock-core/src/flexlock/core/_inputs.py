"""A finished run's identity inputs, kept beside its sheet so that resuming is cheap.

Whether a run is done depends on its status, config, code trees, data hashes and
upstream ids, not on the rest of its sheet, whose env lists every installed
package and whose prevs embed the upstream sheets. PyYAML builds that sheet in
Python at milliseconds a sheet, so checking a 1,000-task list before a resume
took seconds. When a run finishes, these fields go to `.flexlock/inputs.json`,
stamped with the run.lock's stat (size, mtime, ctime, inode); a reader uses them
only while run.lock is still that very file, and parses the sheet otherwise.
The file is a cache: written without fsync, never pushed as truth, and a
missing, stale or corrupt one only costs the full parse.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from flexlock.core._lockfile import load, write_atomic
from flexlock.core._model import RunLock

if TYPE_CHECKING:
    import cattrs

__all__ = ["CodeInputs", "RunInputs", "inputs_path", "kept_inputs", "read_inputs", "write_inputs"]

_FORMAT = 1
_INPUTS_FILE = ".flexlock/inputs.json"  # in the save_dir, beside lock, history, manifests


@attrs.frozen
class CodeInputs:
    """What a recorded repo contributes to a run's identity, and how to capture it again."""

    root: str
    tree: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@attrs.frozen
class RunInputs:
    """The fields of a sheet that decide whether its run must run again."""

    id: str
    status: str
    save_dir: str | None
    cwd: str | None
    config: dict[str, Any]
    code: dict[str, CodeInputs]
    data: dict[str, str]  # key -> "<algorithm>:<hex>"
    prevs: dict[str, tuple[str, str]]  # key -> (recorded path, upstream id)

    @classmethod
    def of(cls, sheet: RunLock) -> RunInputs:
        """Return the identity inputs of `sheet`."""
        return cls(
            id=sheet.id,
            status=sheet.status,
            save_dir=sheet.save_dir,
            cwd=sheet.env.cwd if sheet.env is not None else None,
            config=sheet.config,
            code={
                key: CodeInputs(repo.root, repo.tree, repo.include, repo.exclude)
                for key, repo in sheet.code.items()
            },
            data={key: record.hash for key, record in sheet.data.items()},
            prevs={key: (prev.path, prev.id) for key, prev in sheet.prevs.items()},
        )


@functools.cache
def _converter() -> cattrs.Converter:
    import cattrs

    return cattrs.Converter(forbid_extra_keys=True)


def inputs_path(lock_file: Path) -> Path:
    """Return where the identity inputs of the sheet `lock_file` are kept."""
    return lock_file.parent / _INPUTS_FILE


def _stamp(lock_file: Path) -> list[int]:
    st = lock_file.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _string_keys_only(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and _string_keys_only(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return all(_string_keys_only(item) for item in value)
    return True


def write_inputs(lock_file: Path, sheet: RunLock) -> None:
    """Keep `sheet`'s identity inputs beside `lock_file`, which must hold `sheet` now.

    Best effort: a sheet whose config JSON cannot hold as is (a non-string key),
    or a directory that refuses the write, only means later readers parse the sheet.
    """
    try:
        if not _string_keys_only(sheet.config):
            raise TypeError("JSON would turn the config's non-string keys into strings")
        raw = {
            "format": _FORMAT,
            "stamp": _stamp(lock_file),
            # attrs.asdict, not cattrs: the same JSON (tuples become lists), without
            # building a second converter on every run's start; reading structures it.
            "inputs": attrs.asdict(RunInputs.of(sheet)),
        }
        content = json.dumps(raw, separators=(",", ":")).encode()
        write_atomic(inputs_path(lock_file), content, durable=False)
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError):
            inputs_path(lock_file).unlink()  # never leave an older run's inputs behind


def kept_inputs(lock_file: Path) -> RunInputs | None:
    """Return the inputs the run kept beside `lock_file`, if that run.lock is still its sheet."""
    # os.path rather than pathlib: a resume calls this once per task.
    path = os.path.join(os.path.dirname(lock_file), _INPUTS_FILE)  # noqa: PTH118, PTH120
    try:
        with open(path, "rb") as handle:  # noqa: PTH123
            raw = json.loads(handle.read())
        if raw["format"] != _FORMAT or raw["stamp"] != _stamp(lock_file):
            return None
        inputs: RunInputs = _converter().structure(raw["inputs"], RunInputs)
    except Exception:  # any unreadable cache means: parse the sheet
        return None
    return inputs


def read_inputs(lock_file: str | os.PathLike[str]) -> RunInputs:
    """Return the identity inputs of the sheet at `lock_file` (a run.lock path).

    Raises:
        LockFileError: the sheet is missing, unreadable or malformed.
    """
    lock_file = Path(lock_file)
    kept = kept_inputs(lock_file)
    # Readers never write the file: only the run, holding its save_dir, knows that
    # run.lock cannot change between its stat and the write.
    return kept if kept is not None else RunInputs.of(load(lock_file))
