"""How a sheet holds its upstream runs on disk (schema 2): each distinct run once.

In memory a `RunLock` is a tree: `prevs[key].lock` is the upstream sheet, with
its own prevs. Schema 1 wrote that tree as it is, so a run reached by N paths (a
`prepare` run shared by 1,000 `train` runs that one `evaluate` run reads) was
written N times. Schema 2 writes `prevs` as references (`{id, path}`) and every
distinct upstream sheet once, in a top-level `upstreams` table keyed by its id;
an upstream whose `env.packages` equals a list already in the sheet (the run's
own, usually) names that run's id instead of repeating it. Reading rebuilds the
tree with one shared object per distinct run, so memory grows with distinct runs
too, and walkers that remember what they visited by object stay linear.

Two sheets with the same id may differ (a run re-run with the same inputs has
new timestamps and outputs): the second one is kept under the key `<id>#2`, and
the references to it say so (`sheet: <id>#2`), so nothing is lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from flexlock.core._errors import LockFileError

if TYPE_CHECKING:  # the records are imported on use: `load_plain` rebuilds plain trees
    from flexlock.core._model import RunLock

__all__ = ["FLAT_SINCE", "flatten", "link_records", "unflatten"]

#: The first schema version whose sheets hold their upstream runs by reference.
FLAT_SINCE = 2

_KEY = "upstreams"

Plain = dict[str, Any]
Sheet = TypeVar("Sheet")


def flatten(lock: RunLock, plain: Callable[[RunLock], Plain]) -> Plain:
    """Return `lock` as a schema-2 mapping: prevs by reference, each upstream sheet once.

    `plain(sheet)` renders one sheet without its prevs (the caller's converter).
    """
    import attrs

    # One key per distinct sheet: objects seen before are found by identity (a
    # loaded sheet shares them), equal copies by comparison with those of their id.
    key_of_object: dict[int, str] = {id(lock): lock.id}
    variants: dict[str, list[tuple[RunLock, str]]] = {lock.id: [(lock, lock.id)]}
    used = {lock.id}
    packages_owner: dict[tuple[tuple[str, str], ...], str] = {}
    entries: dict[str, Plain] = {}

    def key_of(sheet: RunLock) -> tuple[str, bool]:
        """Return the table key of `sheet` and whether it is new."""
        known = key_of_object.get(id(sheet))
        if known is not None:
            return known, False
        same_id = variants.setdefault(sheet.id, [])
        for other, key in same_id:
            if other == sheet:
                key_of_object[id(sheet)] = key
                return key, False
        key, number = sheet.id, 1
        while key in used:
            number += 1
            key = f"{sheet.id}#{number}"
        used.add(key)
        same_id.append((sheet, key))
        key_of_object[id(sheet)] = key
        return key, True

    def render(sheet: RunLock, key: str) -> Plain:
        raw = plain(attrs.evolve(sheet, prevs={}) if sheet.prevs else sheet)
        refs: Plain = {}
        for name, prev in sheet.prevs.items():
            target, new = key_of(prev.lock)
            ref = {"id": prev.id, "path": prev.path}
            if target != prev.id:
                ref["sheet"] = target
            refs[name] = ref
            if new:
                entries[target] = {}  # its place in the table: breadth-first order
                queue.append((prev.lock, target))
        raw["prevs"] = refs
        packages = sheet.env.packages if sheet.env is not None else {}
        if packages:
            items = tuple(packages.items())
            owner = packages_owner.setdefault(items, key)
            if owner != key:
                raw["env"] = {**raw["env"], "packages": owner}
        return raw

    queue: deque[tuple[RunLock, str]] = deque()
    root = render(lock, lock.id)
    while queue:
        sheet, key = queue.popleft()
        entries[key] = render(sheet, key)
    if entries:
        root[_KEY] = entries
    return root


class _Ref(NamedTuple):
    id: str
    path: str
    sheet: str


def _refs(raw: Any, where: str, source: str) -> dict[str, _Ref]:
    """Check a schema-2 `prevs` mapping of references."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _malformed(source, f"{where}.prevs: expected a mapping, got {type(raw).__name__}")
    refs = {}
    for name, ref in raw.items():
        at = f"{where}.prevs[{name!r}]"
        if not isinstance(name, str):
            raise _malformed(source, f"{at}: keys must be strings")
        if not isinstance(ref, dict):
            raise _malformed(source, f"{at}: expected a mapping with id and path")
        for field in ("id", "path"):
            if not isinstance(ref.get(field), str):
                raise _malformed(source, f"{at}.{field}: expected a string, got {ref.get(field)!r}")
        sheet = ref.get("sheet", ref["id"])
        if not isinstance(sheet, str):
            raise _malformed(source, f"{at}.sheet: expected a string, got {sheet!r}")
        refs[name] = _Ref(ref["id"], ref["path"], sheet)
    return refs


def _malformed(source: str, detail: str) -> LockFileError:
    return LockFileError(f"{source}: malformed run.lock: {detail}")


def link_records(sheet: RunLock, prevs: dict[str, tuple[str, str, RunLock]]) -> RunLock:
    """Give a structured sheet its prevs: `{name: (id, path, upstream sheet)}`."""
    import attrs

    from flexlock.core._model import PrevRecord

    records = {
        name: PrevRecord(id=id, path=path, lock=lock) for name, (id, path, lock) in prevs.items()
    }
    return attrs.evolve(sheet, prevs=records)


def unflatten(
    raw: Mapping[str, Any],
    structure: Callable[[Plain, str], Sheet],
    link: Callable[[Sheet, dict[str, tuple[str, str, Sheet]]], Sheet],
    identity: Callable[[Sheet], str],
    *,
    source: str,
) -> Sheet:
    """Rebuild the sheet tree from a schema-2 mapping, one object per distinct upstream run.

    `structure(mapping, where)` converts one sheet without its prevs (the caller's
    converter; `where` names it in errors), `link(sheet, prevs)` gives it its
    upstream sheets, `identity(sheet)` is its run id: records (`link_records`) for
    `load`, plain mappings for `load_plain`.

    Raises:
        LockFileError: a reference to a run the table does not hold, a cycle, an
            entry whose id is not its key, or a field of the wrong type.
    """
    table = raw.get(_KEY) or {}
    if not isinstance(table, dict) or not all(isinstance(key, str) for key in table):
        raise _malformed(source, f"{_KEY}: expected a mapping of run ids to sheets")
    root_id = raw["id"]

    def packages_of(entry: Plain, where: str) -> Plain:
        """Return `entry` with a packages reference replaced by the list it names."""
        env = entry.get("env")
        if not isinstance(env, dict) or not isinstance(env.get("packages"), str):
            return entry
        owner_key = env["packages"]
        owner = raw if owner_key == root_id else table.get(owner_key)
        listed = owner.get("env", {}).get("packages") if isinstance(owner, dict) else None
        if not isinstance(listed, dict):
            raise _malformed(
                source,
                f"{where}.env.packages: {owner_key!r} names no run of this sheet with a "
                "package list",
            )
        return {**entry, "env": {**env, "packages": listed}}

    def convert(entry: Any, where: str, refs: dict[str, _Ref]) -> Sheet:
        if not isinstance(entry, dict):
            raise _malformed(source, f"{where}: expected a sheet mapping")
        plain = {key: value for key, value in entry.items() if key not in ("prevs", _KEY)}
        sheet = structure(packages_of(plain, where), where)
        if not refs:
            return sheet
        return link(
            sheet, {name: (ref.id, ref.path, built[ref.sheet]) for name, ref in refs.items()}
        )

    # Depth-first and iterative: a lineage may be deeper than Python's recursion limit.
    built: dict[str, Sheet] = {}
    expanded: set[str] = set()
    root_refs = _refs(raw.get("prevs"), "run.lock", source)
    for name, ref in root_refs.items():
        if ref.sheet not in table:
            raise _malformed(source, _missing("run.lock", name, ref.sheet))
    stack = [ref.sheet for ref in root_refs.values()]
    while stack:
        key = stack[-1]
        if key in built:
            stack.pop()
            continue
        where = f"run.lock.{_KEY}[{key!r}]"
        entry = table[key]
        refs = _refs(entry.get("prevs") if isinstance(entry, dict) else None, where, source)
        if key not in expanded:
            expanded.add(key)
            for name, ref in refs.items():
                if ref.sheet not in table:
                    raise _malformed(source, _missing(where, name, ref.sheet))
                if ref.sheet in expanded and ref.sheet not in built:
                    raise _malformed(source, f"{where}.prevs[{name!r}]: upstream cycle")
                stack.append(ref.sheet)
            continue
        stack.pop()
        sheet = convert(entry, where, refs)
        sheet_id = identity(sheet)
        if sheet_id != key and not key.startswith(f"{sheet_id}#"):
            raise _malformed(source, f"{where}: holds the sheet of run {sheet_id}")
        built[key] = sheet
    return convert(raw, "run.lock", root_refs)


def _missing(where: str, name: str, key: str) -> str:
    return f"{where}.prevs[{name!r}]: run {key} is not in {_KEY}"
