"""Reading and writing `run.lock` files: strict safe YAML, atomic writes.

Reading refuses what `yaml.safe_load` would silently accept (duplicate keys,
anchors/aliases, i.e. alias bombs) and anything over a size cap; writing goes
through a temp file in the same directory, fsync, `os.replace` and an fsync of
the directory, so a reader never sees half a sheet.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flexlock.core._errors import LockFileError
from flexlock.core._model import SCHEMA_VERSION, RunLock

__all__ = ["MAX_LOCK_BYTES", "dump", "dumps", "load", "loads", "sweep_temp_files", "write_atomic"]

#: Sheets larger than this are refused unread (override with FLEXLOCK_MAX_LOCK_BYTES).
MAX_LOCK_BYTES = 64 * 1024 * 1024
_TEMP_PREFIX = ".flexlock-tmp-"

if TYPE_CHECKING:
    import cattrs


@functools.cache
def _converter() -> cattrs.Converter:
    # cattrs and yaml are imported on first use so `import flexlock.core` stays cheap.
    import cattrs

    return cattrs.Converter()

# Key order on disk follows the schema (DESIGN.md §3), not attrs field order.
_KEY_ORDER = (
    "flexlock", "id", "status", "created", "finished", "error", "save_dir",
    "config", "code", "data", "prevs", "env",
)


def _unstructure(lock: RunLock) -> dict[str, Any]:
    raw: dict[str, Any] = _converter().unstructure(lock)
    return _strip_none({key: raw[key] for key in _KEY_ORDER if raw.get(key) is not None})


def _strip_none(value: Any) -> Any:
    """Drop None-valued attrs fields recursively; config values pass through untouched."""
    if isinstance(value, dict):
        return {
            key: (item if key == "config" else _strip_none(item))
            for key, item in value.items()
            if item is not None or key == "config"
        }
    if isinstance(value, list | tuple):
        return [_strip_none(item) for item in value]
    return value


@functools.cache
def _strict_loader() -> type:
    """Build a SafeLoader subclass that rejects duplicate keys and anchors/aliases."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, "anchors and aliases are not allowed in a run.lock", event.start_mark
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r}", key_node.start_mark,
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def _max_bytes() -> int:
    return int(os.environ.get("FLEXLOCK_MAX_LOCK_BYTES", MAX_LOCK_BYTES))


def loads(text: str, *, source: str = "<string>") -> RunLock:
    """Parse run.lock text into a `RunLock`.

    Raises:
        LockFileError: bad YAML (with file:line), not a sheet, or a newer schema.
    """
    import cattrs
    import yaml

    if len(text) > _max_bytes():
        raise LockFileError(f"{source}: {len(text)} bytes is over the run.lock size cap")
    try:
        loader = _strict_loader()(text)
        try:
            raw = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise LockFileError(f"{where}: invalid run.lock: {error.problem or error}") from None
    except yaml.YAMLError as error:
        raise LockFileError(f"{source}: invalid run.lock: {error}") from None
    if not isinstance(raw, dict) or "id" not in raw:
        raise LockFileError(f"{source}: not a run.lock (expected a mapping with 'flexlock' and 'id')")
    version = raw.get("flexlock")
    if not isinstance(version, int):
        raise LockFileError(f"{source}: missing or invalid schema version 'flexlock: {version!r}'")
    if version > SCHEMA_VERSION:
        raise LockFileError(
            f"{source}: written by a newer flexlock (schema {version}, this one reads up to "
            f"{SCHEMA_VERSION}); upgrade with: pip install --upgrade flexlock-core"
        )
    try:
        return _converter().structure(raw, RunLock)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as error:
        details = "; ".join(cattrs.transform_error(error)) if isinstance(
            error, cattrs.BaseValidationError) else str(error)
        raise LockFileError(f"{source}: malformed run.lock: {details}") from None


def load(path: str | os.PathLike[str]) -> RunLock:
    """Read a run sheet from `path` (a run.lock file or a directory holding one).

    Raises:
        LockFileError: missing, unreadable, too large or malformed file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "run.lock"
    try:
        size = path.stat().st_size
        if size > _max_bytes():
            raise LockFileError(f"{path}: {size} bytes is over the run.lock size cap")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockFileError(f"{path}: no run.lock here (is this a run directory?)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LockFileError(f"{path}: cannot read run.lock: {error}") from None
    return loads(text, source=str(path))


def dumps(lock: RunLock) -> str:
    """Render a `RunLock` as YAML text that `loads` reads back equal."""
    import yaml

    return yaml.safe_dump(
        _unstructure(lock), sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


def dump(lock: RunLock, path: str | os.PathLike[str]) -> None:
    """Write `lock` to `path` atomically."""
    write_atomic(Path(path), dumps(lock).encode("utf-8"))


def write_atomic(path: Path, content: bytes) -> None:
    """Replace `path` with `content` so that readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX + path.name + ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # EINVAL/ENOTSUP on some filesystems, as borg notes
        pass
    finally:
        os.close(fd)


def sweep_temp_files(directory: Path, *, older_than_s: float = 600.0) -> list[Path]:
    """Remove temp files left by killed writers in `directory`; return what was removed."""
    removed = []
    cutoff = time.time() - older_than_s
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.name.startswith(_TEMP_PREFIX):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed.append(Path(entry.path))
    return removed
