"""Reading and writing `run.lock` files: strict safe YAML, atomic writes.

Reading goes through the strict loader (`_yaml`: it refuses duplicate keys,
anchors/aliases, i.e. alias bombs, python tags), refuses anything over a size
cap, and checks every field's type; writing goes through a temp file in the same
directory, fsync, `os.replace` and an fsync of the directory, so a reader never
sees half a sheet. Strings that another YAML reader (1.1 or 1.2) could take
for a number, boolean, null or date are always quoted.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flexlock.core._errors import LockFileError

__all__ = [
    "MAX_LOCK_BYTES",
    "dump",
    "dumps",
    "load",
    "loads",
    "read_text",
    "sweep_temp_files",
    "write_atomic",
]

#: Sheets larger than this are refused unread (override with FLEXLOCK_MAX_LOCK_BYTES).
MAX_LOCK_BYTES = 64 * 1024 * 1024
TEMP_PREFIX = ".flexlock-tmp-"

if TYPE_CHECKING:
    import cattrs

    # The records (attrs classes) are imported where they are used: reading a sheet as
    # plain data (`load_data`, for `flexlock show`) never builds them.
    from flexlock.core._model import RunLock

# Key order on disk follows the schema (DESIGN.md §3), not attrs field order.
_KEY_ORDER = (
    "flexlock",
    "id",
    "status",
    "created",
    "finished",
    "error",
    "save_dir",
    "config",
    "code",
    "data",
    "prevs",
    "env",
    "outputs",
    "attempts",
    "upstreams",  # schema 2: each distinct upstream sheet once (`_upstreams`)
)

# Plain scalars that YAML 1.2 readers (or YAML 1.1 ones PyYAML does not
# emulate fully) would read as something other than a string. Compiled when the
# first sheet is written (`_dumpers`), not at import: readers never need them.
_AMBIGUOUS = r"""[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?
    |0o[0-7]+|0x[0-9a-fA-F]+|0b[01]+
    |[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)
    |y|Y|n|N|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
    |null|Null|NULL|~|
    |[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?
    |[0-9:]+:[0-9]+(\.[0-9]*)?"""

# Characters YAML folds or normalises (NEL, line/paragraph separators, CR) or
# that are not printable: only the double-quoted style keeps them, as escapes.
_NEEDS_ESCAPES = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff]"


@functools.cache
def converter() -> cattrs.Converter:
    """Build the one cattrs converter for run sheets (cattrs is imported on first use)."""
    import cattrs
    from cattrs.gen import make_dict_unstructure_fn, override

    from flexlock.core._model import (
        AttemptRecord,
        DataRecord,
        EnvRecord,
        ErrorRecord,
        OutputRecord,
        PrevRecord,
        RepoRecord,
        RunLock,
        SkippedFile,
    )

    converter = cattrs.Converter(forbid_extra_keys=False)  # newer minor revisions may add keys

    # cattrs would coerce `id: 5` into "5"; a run sheet with the wrong type is malformed.
    def structure_str(value: Any, _: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")
        return value

    def structure_int(value: Any, _: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {type(value).__name__} {value!r}")
        return value

    def structure_bool(value: Any, _: Any) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {type(value).__name__} {value!r}")
        return value

    converter.register_structure_hook(str, structure_str)
    converter.register_structure_hook(int, structure_int)
    converter.register_structure_hook(bool, structure_bool)

    # Optional fields at their default are left out so sheets stay short; the
    # schema's top-level sections are always written so `yaml.safe_load` users
    # can index them without checks. Each record's function is generated on its
    # first use (a factory, not a hook): reading a sheet never generates them.
    records = (
        ErrorRecord,
        SkippedFile,
        RepoRecord,
        DataRecord,
        OutputRecord,
        EnvRecord,
        AttemptRecord,
    )
    converter.register_unstructure_hook_factory(
        lambda cls: cls in records,
        lambda cls: make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=True),
    )
    # Written by hand because RunLock and PrevRecord refer to each other: the
    # embedded sheet is rendered like a top-level one, when called (schema 1 only;
    # schema 2 writes prevs by reference, `_upstreams`).
    converter.register_unstructure_hook(
        PrevRecord,
        lambda prev: {"id": prev.id, "path": prev.path, "lock": nested_dict(prev.lock)},
    )
    keep = override(omit_if_default=False)
    converter.register_unstructure_hook_factory(
        lambda cls: cls is RunLock,
        lambda cls: make_dict_unstructure_fn(
            cls,
            converter,
            _cattrs_omit_if_default=True,
            flexlock=keep,
            config=keep,
            code=keep,
            data=keep,
            prevs=keep,
        ),
    )
    return converter


def to_dict(lock: RunLock) -> dict[str, Any]:
    """Return `lock` as the plain mapping that is written to disk, keys in schema order.

    The sheet keeps the schema it was read with: a schema-1 sheet embeds its
    upstream sheets whole, a schema-2 one lists each distinct upstream run once.
    """
    from flexlock.core._upstreams import FLAT_SINCE, flatten

    if lock.flexlock < FLAT_SINCE:
        return nested_dict(lock)
    return flatten(lock, nested_dict)


def nested_dict(lock: RunLock) -> dict[str, Any]:
    """Return a sheet as a plain mapping, its upstream sheets nested (as schema 1 writes)."""
    raw: dict[str, Any] = converter().unstructure(lock)
    return {key: raw[key] for key in _KEY_ORDER if key in raw}


def from_dict(raw: Any, *, source: str = "<dict>") -> RunLock:
    """Check and convert a parsed mapping into a `RunLock`.

    Raises:
        LockFileError: not a sheet, a newer schema, or a field of the wrong type.
    """
    from flexlock.core._model import SCHEMA_VERSION
    from flexlock.core._upstreams import FLAT_SINCE, link_records, unflatten

    if not isinstance(raw, dict) or "id" not in raw:
        raise LockFileError(
            f"{source}: not a run.lock (expected a mapping with 'flexlock' and 'id' keys)"
        )
    version = raw.get("flexlock")
    if isinstance(version, bool) or not isinstance(version, int):
        raise LockFileError(f"{source}: missing or invalid schema version 'flexlock: {version!r}'")
    if version > SCHEMA_VERSION:
        raise LockFileError(
            f"{source}: written by a newer flexlock (schema {version}, this one reads up to "
            f"{SCHEMA_VERSION}); upgrade with: pip install --upgrade flexlock-core"
        )
    if version < FLAT_SINCE:
        return _structure(raw, "run.lock", source)
    return unflatten(
        raw,
        lambda sheet, where: _structure(sheet, where, source),
        link_records,
        lambda sheet: sheet.id,
        source=source,
    )


def _structure(raw: dict[str, Any], where: str, source: str) -> RunLock:
    """Convert one parsed sheet; `where` names it in errors (`run.lock`, an upstream)."""
    import cattrs

    from flexlock.core._model import RunLock

    try:
        return converter().structure(raw, RunLock)
    except cattrs.BaseValidationError as error:
        details = "; ".join(cattrs.transform_error(error, path=where, format_exception=_describe))
        raise LockFileError(f"{source}: malformed run.lock: {details}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise LockFileError(f"{source}: malformed run.lock: {error}") from None


def _describe(error: BaseException, _type: Any) -> str:
    """Describe one field's structuring error for `cattrs.transform_error`."""
    if isinstance(error, KeyError):
        return "required field missing"
    return str(error) or type(error).__name__


@functools.cache
def _dumpers() -> tuple[type[Any], ...]:
    """Build dumpers (libyaml's first) writing tuples as lists and quoting ambiguous strings."""
    import yaml

    needs_escapes = re.compile(_NEEDS_ESCAPES).search
    ambiguous = re.compile(_AMBIGUOUS, re.VERBOSE).fullmatch

    def represent_str(self: Any, data: str) -> Any:
        if needs_escapes(data):
            return self.represent_scalar("tag:yaml.org,2002:str", data, style='"')
        if ambiguous(data):
            return self.represent_scalar("tag:yaml.org,2002:str", data, style="'")
        return self.represent_scalar("tag:yaml.org,2002:str", data)

    dumpers: list[Any] = []
    base: Any
    for base in (getattr(yaml, "CSafeDumper", None), yaml.SafeDumper):
        if base is None:
            continue
        dumper: Any = type("SheetDumper", (base,), {})
        dumper.add_representer(str, represent_str)
        dumper.add_representer(tuple, base.represent_list)
        dumpers.append(dumper)
    return tuple(dumpers)


_DUMP_OPTIONS: dict[str, Any] = {
    "sort_keys": False,
    "allow_unicode": True,
    "default_flow_style": False,
    "width": 100,
}


def max_lock_bytes() -> int:
    """Return the run.lock size cap: `FLEXLOCK_MAX_LOCK_BYTES`, else `MAX_LOCK_BYTES`."""
    return int(os.environ.get("FLEXLOCK_MAX_LOCK_BYTES", MAX_LOCK_BYTES))


def parse_yaml(text: str, *, source: str = "<string>") -> Any:
    """Parse YAML text with the strict run.lock rules and return plain data.

    Raises:
        LockFileError: bad YAML, duplicate key, anchor/alias or python tag, with file:line.
    """
    from flexlock.core._yaml import load_yaml

    if len(text) > max_lock_bytes():
        raise LockFileError(
            f"{source}: {len(text)} characters is over the run.lock size cap of {max_lock_bytes()} "
            "(raise FLEXLOCK_MAX_LOCK_BYTES if this sheet is genuine)"
        )
    return load_yaml(text, source=source, what="run.lock", error=LockFileError, max_chars=None)


def loads(text: str, *, source: str = "<string>") -> RunLock:
    """Parse run.lock text into a `RunLock`.

    Raises:
        LockFileError: bad YAML (with file:line), not a sheet, a newer schema or a wrong type.
    """
    return from_dict(parse_yaml(text, source=source), source=source)


def lock_path(path: str | os.PathLike[str]) -> Path:
    """Return the run.lock of `path`: a run.lock file, or the directory (to be) holding one."""
    path = Path(path)
    if path.is_dir() or (path.suffix != ".lock" and not path.exists()):
        return path / "run.lock"
    return path


def load(path: str | os.PathLike[str]) -> RunLock:
    """Read a run sheet from `path` (a run.lock file or a directory holding one).

    Raises:
        LockFileError: missing, unreadable, too large or malformed file.
    """
    lock_file, text = read_text(path)
    return loads(text, source=str(lock_file))


def read_text(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """Return the run.lock of `path` and its text, refusing an empty or too large one.

    Raises:
        LockFileError: missing, unreadable, empty or over the size cap.
    """
    path = lock_path(path)
    try:
        size = path.stat().st_size
        if size > max_lock_bytes():
            raise LockFileError(
                f"{path}: {size} bytes is over the run.lock size cap of {max_lock_bytes()} "
                "(raise FLEXLOCK_MAX_LOCK_BYTES if this sheet is genuine)"
            )
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise LockFileError(f"{path}: no run.lock here (is this a run directory?)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LockFileError(f"{path}: cannot read run.lock: {error}") from None
    if not text.strip():
        raise LockFileError(f"{path}: run.lock is empty (its writer was killed before it wrote)")
    return path, text


def _render(data: dict[str, Any]) -> str:
    import yaml

    *fast, portable = _dumpers()
    for dumper in fast:
        try:
            text: str = yaml.dump(data, Dumper=dumper, **_DUMP_OPTIONS)
        except UnicodeEncodeError:
            continue  # lone surrogates (non-UTF-8 file names): only the Python emitter escapes them
        return text
    portable_text: str = yaml.dump(data, Dumper=portable, **_DUMP_OPTIONS)
    return portable_text


# Rendering is most of a dump's cost (PyYAML builds a node per value in Python), and
# the big sections repeat: a run writes its sheet twice with the same env, code and
# prevs, and a task list's worker writes every task's sheet with the same env (every
# installed package). A block mapping's text is its keys' texts one after the other,
# so each top-level key is rendered on its own and its text kept, keyed by its value.
_SECTIONS_KEPT = 32
_SECTION_MAX_CHARS = 256 * 1024  # big upstream sheets are rendered each time
_sections: dict[Any, str] = {}


def _render_section(key: str, value: Any) -> str:
    # repr, in C, not a hashable copy built in Python (a task list's worker built 300 nested
    # values a sheet): `to_dict` gives plain values whose repr tells apart what renders
    # differently (1, 1.0, True, '1'; -0.0 and 0.0; key order). Values that render alike
    # with different reprs (a tuple and a list) only miss the cache.
    cache_key = (key, repr(value))
    text = _sections.pop(cache_key, None)
    if text is None:
        text = _render({key: value})
        if len(text) > _SECTION_MAX_CHARS:
            return text
        if len(_sections) >= _SECTIONS_KEPT:
            del _sections[next(iter(_sections))]  # the least recently used
    _sections[cache_key] = text
    return text


def dumps(lock: RunLock) -> str:
    """Render a `RunLock` as YAML text that `loads` reads back equal."""
    return "".join(_render_section(key, value) for key, value in to_dict(lock).items())


def dump(
    lock: RunLock,
    path: str | os.PathLike[str],
    *,
    durable: bool = True,
    sync_directory: bool = True,
) -> None:
    """Write `lock` to `path` atomically (`durable`, `sync_directory`: see `write_atomic`).

    Raises:
        LockFileError: the sheet would be over the reader's size cap (nothing is
            written); the message names its largest section and key.
    """
    sections = {key: _render_section(key, value) for key, value in to_dict(lock).items()}
    content = "".join(sections.values()).encode("utf-8")
    if len(content) > max_lock_bytes():
        raise LockFileError(_too_large_message(Path(path), len(content), lock, sections))
    write_atomic(Path(path), content, durable=durable, sync_directory=sync_directory)


def _too_large_message(path: Path, size: int, lock: RunLock, sections: dict[str, str]) -> str:
    """Say how large the sheet would be and which top-level section and key make it so."""
    section = max(sections, key=lambda key: len(sections[key]))
    where = f"{section!r} ({len(sections[section].encode('utf-8'))} bytes)"
    value, dotted, largest = to_dict(lock)[section], section, 0
    while isinstance(value, dict) and value:  # down the largest key to a leaf
        sizes = {key: len(_render({key: item}).encode("utf-8")) for key, item in value.items()}
        key = max(sizes, key=lambda name: sizes[name])
        value, dotted, largest = value[key], f"{dotted}.{key}", sizes[key]
    if largest:
        where += f", most of it '{dotted}' ({largest} bytes)"
    return (
        f"{path}: this run.lock would be {size} bytes, over the run.lock size cap of "
        f"{max_lock_bytes()} that readers refuse; the largest part is {where}. "
        "Nothing was written: record less there (large values belong in files in "
        "save_dir), or raise FLEXLOCK_MAX_LOCK_BYTES for writer and readers alike"
    )


def write_atomic(
    path: Path, content: bytes, *, durable: bool = True, sync_directory: bool = True
) -> None:
    """Replace `path` with `content` so that readers see the old or the new file, never a mix.

    The file gets the mode an ordinary `open()` would give it (0644 under umask 022,
    0664 under 002, the directory's group when it is setgid), so colleagues sharing a
    results folder can read it. `durable=False` skips the fsyncs, for caches that a
    crash may lose; `sync_directory=False` keeps the fsync of the content (a crash
    leaves the old file or the whole new one) but not the directory's (the rename
    itself may be lost to a crash, leaving the old file).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: it creates 0600 files whatever the umask. A random name
    # created with O_EXCL is as safe against collisions and lets the umask apply.
    temp = path.parent / f"{TEMP_PREFIX}{path.name}.{os.urandom(6).hex()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        temp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    if durable and sync_directory:
        fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Flush `directory`'s entries to disk, where the filesystem supports it."""
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


def sweep_temp_files(
    directory: Path, *, older_than_s: float = 600.0, prefix: str = TEMP_PREFIX
) -> list[Path]:
    """Remove temp files left by killed writers in `directory`; return what was removed.

    Only files starting with `prefix` and last modified more than `older_than_s`
    seconds ago are removed, so a live writer's temp file is left alone.
    """
    removed = []
    cutoff = time.time() - older_than_s
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(prefix):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime <= cutoff:
                        Path(entry.path).unlink()
                        removed.append(Path(entry.path))
    return removed
