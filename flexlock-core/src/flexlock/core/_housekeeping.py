"""`flexlock gc`: what can go (old history sheets, unneeded snapshot refs, dead cache shards).

`plan_gc` only reads: it walks the given directories for sheets, and reads the sheets
of every save_dir listed by the repositories they record (see
`_git_snapshot.save_dirs_file`), so a ref goes only when no sheet on disk that flexlock
knows of names its commit. `GcPlan.apply` removes what the plan lists, and turns the
per-run refs of older versions that are still needed into per-commit refs, one git
transaction per repository.

Sheets are not parsed whole: the commits they need are every `snapshot:` value in
their text (their own code, their submodules', and those of embedded upstream sheets),
and only the `code:` section is parsed to find the repositories. Reading more than is
needed can only keep a ref that could go, never drop one that is needed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import attrs

from flexlock.core._git_runner import run_git
from flexlock.core._git_snapshot import KEPT_PREFIX, REF_PREFIX, kept_ref, save_dirs_file
from flexlock.core._savedir import history_dir

__all__ = ["GcPlan", "plan_gc"]

_SNAPSHOT = re.compile(rb"\bsnapshot: ([0-9a-f]{40}(?:[0-9a-f]{24})?)\b")
_ROOT = re.compile(rb"^ +root: (.+)$", re.MULTILINE)  # submodules' too
_BODY_AFTER_CODE = re.compile(rb"^(?:data|prevs|env|outputs):", re.MULTILINE)
#: A loose ref younger than this is left alone: its run may not have written its sheet yet.
FRESH_REF_S = 3600.0
_STAMP = re.compile(r"^(\d{8}T\d{6})Z")


@attrs.frozen
class GcPlan:
    """What `flexlock gc` would remove, and what it keeps."""

    history: tuple[tuple[Path, int], ...]  # history sheets to remove, bytes each frees
    refs: dict[str, tuple[tuple[str, str], ...]]  # repo root -> (ref, commit) to delete
    migrate: dict[str, tuple[tuple[str, str], ...]]  # repo root -> per-run refs to re-pin
    cache: tuple[tuple[Path, int], ...]  # hash cache directories to remove, bytes each
    sheets: int  # sheets read
    needed: int  # distinct snapshot commits they name

    @property
    def freed(self) -> int:
        """Bytes the history and cache removals free (refs free objects at `git gc`)."""
        return sum(size for _, size in self.history) + sum(size for _, size in self.cache)

    def apply(self) -> None:
        """Remove what the plan lists; a file already gone is fine."""
        for path, _ in self.history:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for root in sorted({*self.refs, *self.migrate}):
            lines = [
                f"update {kept_ref(commit)} {commit}\ndelete {ref} {commit}\n"
                for ref, commit in self.migrate.get(root, ())
            ]
            lines += [f"delete {ref} {commit}\n" for ref, commit in self.refs.get(root, ())]
            # One transaction: each delete names the value it expects, so a ref that a
            # run re-pinned meanwhile makes the whole update fail instead of losing it.
            run_git(["update-ref", "--stdin"], root, stdin="".join(lines).encode())
        for path, _ in self.cache:
            shutil.rmtree(path, ignore_errors=True)


def _sheets_of(save_dir: Path) -> Iterator[Path]:
    lock = save_dir / "run.lock"
    if lock.is_file():
        yield lock
    with contextlib.suppress(OSError):
        yield from sorted(history_dir(save_dir).glob("*.lock"))


def _read(path: Path, needed: set[str], roots: set[str]) -> None:
    try:
        text = path.read_bytes()
    except OSError:
        return
    needed.update(match.decode() for match in _SNAPSHOT.findall(text))
    start = text.find(b"\ncode:")
    if start < 0:
        return
    end = _BODY_AFTER_CODE.search(text, start + 1)
    section = text[start : end.start() if end else len(text)]
    for match in _ROOT.findall(section):
        value = match.decode("utf-8", "surrogateescape").strip()
        if value[:1] in "'\"":
            import yaml

            with contextlib.suppress(yaml.YAMLError):
                value = str(yaml.safe_load(value))
        roots.add(value)


def _history_to_prune(
    save_dir: Path, keep: int, older_than: str | None
) -> Iterator[tuple[Path, int]]:
    """The history sheets of `save_dir` beyond the `keep` newest (and before `older_than`)."""
    try:
        entries = sorted(history_dir(save_dir).glob("*.lock"), key=lambda path: path.name)
    except OSError:
        return
    cutoff = older_than.replace("-", "").replace(":", "")[:15] if older_than else None
    for path in entries[: max(0, len(entries) - keep)]:
        stamp = _STAMP.match(path.name)
        if cutoff is not None and (stamp is None or stamp.group(1) >= cutoff):
            continue
        try:
            info = path.stat()
        except OSError:
            continue
        # A history entry is a hard link to the sheet it kept; it frees space only alone.
        yield path, info.st_size if info.st_nlink == 1 else 0


def _registered(roots: Iterable[str]) -> set[Path]:
    listed: set[Path] = set()
    for root in roots:
        with contextlib.suppress(Exception):  # a repo gone or unreadable lists nothing
            text = save_dirs_file(root).read_text(encoding="utf-8", errors="surrogateescape")
            listed.update(Path(line) for line in text.splitlines() if line)
    return listed


def _refs(root: str) -> list[tuple[str, str]]:
    output = run_git(
        ["for-each-ref", "--format=%(refname) %(objectname)", REF_PREFIX, KEPT_PREFIX], root
    ).stdout.decode()
    return [tuple(line.split(" ", 1)) for line in output.splitlines()]  # type: ignore[misc]


def _fresh(root: str, ref: str, now: float) -> bool:
    """Whether `ref` is a loose ref written within `FRESH_REF_S` (packed refs are old)."""
    common = save_dirs_file(root).parent.parent
    try:
        return now - (common / ref).stat().st_mtime < FRESH_REF_S
    except OSError:
        return False


def _size(path: Path) -> int:
    total = 0
    for top, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(top, name)).st_size  # noqa: PTH118
    return total


def _dead_cache(cache_dir: Path) -> Iterator[tuple[Path, int]]:
    """Cache directories of older formats, and shards of roots that no longer exist."""
    from flexlock.core import _hashcache

    hashes = cache_dir / "hashes"
    current = f"v{_hashcache._FORMAT}"
    with contextlib.suppress(OSError):
        for entry in sorted(hashes.iterdir()):
            if entry.is_dir() and entry.name != current:
                yield entry, _size(entry)
    with contextlib.suppress(OSError):
        for shard in sorted((hashes / current).iterdir()):
            root = _shard_root(shard)
            if root is not None and not Path(_existing_part(root)).exists():
                yield shard, _size(shard)


def _existing_part(root: str) -> str:
    """The path that must exist for a hashed root (`directory:/p`, `file:/p`, `glob:/p/*.x`)."""
    kind, sep, path = root.partition(":")
    if not sep or not kind.isalpha() or not path:
        return root
    magic = re.search(r"[*?\[]", path)
    return str(Path(path[: magic.start()]).parent) if magic else path


def _shard_root(shard: Path) -> str | None:
    """The hashed root a shard's segments name (`algorithm\\0root` after the header)."""
    with contextlib.suppress(OSError):
        for segment in sorted(shard.glob("*.seg")):
            with segment.open("rb") as stream:
                header = stream.readline().split()
                identity = stream.read(int(header[3])) if len(header) == 7 else b""
            if b"\0" in identity:
                return identity.split(b"\0", 1)[1].decode("utf-8", "surrogateescape")
    return None


def plan_gc(
    dirs: Sequence[str | os.PathLike[str]],
    *,
    keep_history: int = 10,
    older_than: str | None = None,
    cache_dir: Path | None = None,
    clean_cache: bool = True,
) -> GcPlan:
    """Say what `flexlock gc` would remove under `dirs`; nothing is changed.

    Args:
        dirs: directories holding runs (searched like `flexlock ls`).
        keep_history: per save_dir, the newest history sheets kept.
        older_than: an ISO date or time (UTC); only history sheets created before it go.
        cache_dir: the hash cache (default: `default_cache_dir()`).
        clean_cache: also list dead hash cache shards.
    """
    from flexlock.core._hashcache import default_cache_dir
    from flexlock.core._runs import find_runs

    save_dirs: set[Path] = set()
    for directory in dirs:
        save_dirs.update(lock.parent.absolute() for lock in find_runs(directory))
    history = [
        entry
        for save_dir in sorted(save_dirs)
        for entry in _history_to_prune(save_dir, keep_history, older_than)
    ]
    pruned = {path for path, _ in history}
    needed: set[str] = set()
    roots: set[str] = set()
    read: set[Path] = set()
    pending = set(save_dirs)
    while pending:  # the repos' listed save_dirs may record further repos
        for save_dir in pending:
            for sheet in _sheets_of(save_dir):
                if sheet not in pruned:
                    _read(sheet, needed, roots)
        read |= pending
        roots = {root for root in roots if Path(root, ".git").exists()}
        pending = {path.absolute() for path in _registered(roots)} - read
    refs: dict[str, tuple[tuple[str, str], ...]] = {}
    migrate: dict[str, tuple[tuple[str, str], ...]] = {}
    now = time.time()
    for root in sorted(roots):
        drop, move = [], []
        for ref, commit in _refs(root):
            if commit in needed or _fresh(root, ref, now):
                if ref.startswith(REF_PREFIX):
                    move.append((ref, commit))
            else:
                drop.append((ref, commit))
        if drop:
            refs[root] = tuple(drop)
        if move:
            migrate[root] = tuple(move)
    cache = tuple(_dead_cache(cache_dir or default_cache_dir())) if clean_cache else ()
    sheets = sum(1 for save_dir in read for _ in _sheets_of(save_dir))
    return GcPlan(tuple(history), refs, migrate, cache, sheets - len(pruned), len(needed))
