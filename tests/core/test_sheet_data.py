"""`load_plain`: a sheet as plain data, accepting and refusing exactly what `load` does."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexlock.core import LockFileError, RunLock, _model, dump, load, load_plain
from flexlock.core._lockfile import _structure, nested_dict, to_dict
from flexlock.core._sheet_data import _STATUSES, SCHEMA, SCHEMA_VERSION
from tests.core.test_lockfile import run_locks


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(item) for item in value]
    return value


def _kind(annotation: Any) -> str:
    """The `SCHEMA` kind of a resolved attrs field type."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _kind(inner) + "?"
    origin = typing.get_origin(annotation)
    if origin is dict:
        assert args[0] is str
        return "{" + _kind(args[1]) + "}"
    if origin is tuple:
        assert args[1] is Ellipsis
        return "[" + _kind(args[0]) + "]"
    if origin is typing.Literal:
        assert args == _STATUSES
        return "status"
    if annotation is typing.Any:
        return "any"
    return {str: "str", int: "int", bool: "bool"}.get(annotation, annotation.__name__)


def test_schema_is_the_models_records() -> None:
    assert SCHEMA_VERSION == _model.SCHEMA_VERSION
    from_model = {}
    for name in SCHEMA:
        cls = attrs.resolve_types(getattr(_model, name), globalns=vars(_model))
        from_model[name] = {
            field.name: (_kind(field.type), field.default is attrs.NOTHING)
            for field in attrs.fields(cls)
        }
    assert from_model == SCHEMA
    assert set(SCHEMA) == {
        name for name, value in vars(_model).items() if attrs.has(value) and name in _model.__all__
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_locks)
def test_every_sheet_reads_as_the_data_written(lock: RunLock) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as temp:
        path = Path(temp) / "run.lock"
        dump(lock, path)
        # upstream sheets nested under prevs.<key>.lock, whatever the schema on disk
        assert _lists(nested_dict(lock)) == _lists(load_plain(path))


WRONG = [5, -1, "x", True, None, [], {}, ["x"], {"x": 1}, 1.5, "succeeded"]


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _leaves(item, (*path, index))
    return found


def _outcome(read: Any, path: Path) -> Any:
    """What reading `path` gives, as the sheet it means (defaults filled), or the error.

    `read` returns the nested tree (`load_plain`'s shape); it is structured as such.
    """
    try:
        return ("read", _lists(nested_dict(_structure(read(path), "run.lock", str(path)))))
    except LockFileError as error:
        return ("refused", str(error))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_locks, st.data())
def test_a_damaged_sheet_is_refused_or_read_exactly_as_load_does(
    lock: RunLock, data: st.DataObject
) -> None:
    import tempfile

    import yaml

    raw = _lists(to_dict(lock))
    where = data.draw(st.sampled_from(_leaves(raw)[1:]))
    replacement = data.draw(st.sampled_from([*WRONG, "drop"]))
    parent = raw
    for key in where[:-1]:
        parent = parent[key]
    if replacement == "drop":
        del parent[where[-1]]
    else:
        parent[where[-1]] = replacement
    with tempfile.TemporaryDirectory() as temp:
        path = Path(temp) / "run.lock"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        expected = _outcome(lambda p: nested_dict(load(p)), path)
        assert expected == _outcome(load_plain, path)


@pytest.mark.parametrize(
    "text",
    ["", "- 1\n", "flexlock: 3\nid: x\nstatus: running\ncreated: t\n", "id: x\n", "a: [\n"],
)
def test_unreadable_sheets_give_loads_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "run.lock"
    path.write_text(text)
    with pytest.raises(LockFileError) as expected:
        load(path)
    with pytest.raises(LockFileError) as got:
        load_plain(path)
    assert str(expected.value) == str(got.value)
