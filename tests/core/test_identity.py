"""Run identity and config unstructuring."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

import attrs

from flexlock.core import compute_id, config_to_dict
from flexlock.core._identity import config_changes

BASE = (
    {"lr": 0.1, "model": {"depth": 3}},
    {".": "tree1"},
    {"data/a.csv": "sha256:aa"},
    {"prep": "sha256:pp"},
)


def test_id_is_a_sha256_with_its_algorithm() -> None:
    run_id = compute_id(*BASE)
    assert run_id.startswith("sha256:")
    assert 64 == len(run_id.partition(":")[2])


def test_id_is_the_same_for_the_same_inputs_in_any_key_order() -> None:
    _, code, data, prevs = BASE
    reordered = {"model": {"depth": 3}, "lr": 0.1}
    assert compute_id(*BASE) == compute_id(reordered, dict(code), dict(data), dict(prevs))


def test_id_changes_with_each_input() -> None:
    config, code, data, prevs = BASE
    variants = [
        compute_id({"lr": 0.2, "model": {"depth": 3}}, code, data, prevs),
        compute_id(config, {".": "tree2"}, data, prevs),
        compute_id(config, code, {"data/a.csv": "sha256:ab"}, prevs),
        compute_id(config, code, data, {"prep": "sha256:pq"}),
        compute_id(config, code, {"data/b.csv": "sha256:aa"}, prevs),
    ]
    assert len({compute_id(*BASE), *variants}) == 1 + len(variants)


def test_int_and_float_and_bool_values_have_different_ids() -> None:
    _, code, data, prevs = BASE
    ids = {compute_id({"x": value}, code, data, prevs) for value in (1, 1.0, True, "1")}
    assert 4 == len(ids)


@attrs.define
class Model:
    depth: int = 3
    path: Path = Path("models/x")


@attrs.define
class AttrsConfig:
    lr: float = 0.1
    model: Model = attrs.Factory(Model)


@dataclasses.dataclass
class DataclassConfig:
    lr: float = 0.1
    tags: tuple[str, ...] = ("a", "b")


class Color(enum.Enum):
    RED = "red"


class PlainConfig:
    lr = 0.1
    color = Color.RED
    save_dir = "results/x"

    class model:  # noqa: N801 - the seed scripts' nested-section style
        depth = 3

    def method(self) -> None:
        """Not config."""

    @property
    def derived(self) -> float:
        """Not config either."""
        return self.lr * 2


def test_attrs_config_unstructures_with_paths_as_strings() -> None:
    assert {"lr": 0.1, "model": {"depth": 3, "path": "models/x"}} == config_to_dict(AttrsConfig())


def test_dataclass_config_unstructures_with_tuples_as_lists() -> None:
    assert {"lr": 0.1, "tags": ["a", "b"]} == config_to_dict(DataclassConfig())


def test_plain_class_keeps_public_non_callable_attributes() -> None:
    expected = {"lr": 0.1, "color": "red", "save_dir": "results/x", "model": {"depth": 3}}
    assert expected == config_to_dict(PlainConfig)


def test_plain_instance_overlays_instance_attributes_on_class_ones() -> None:
    config = PlainConfig()
    config.lr = 0.5
    assert 0.5 == config_to_dict(config)["lr"]


def test_config_changes_name_dotted_keys_with_old_and_new_values() -> None:
    old = {"lr": 0.1, "model": {"depth": 3}, "gone": 1}
    new = {"lr": 0.2, "model": {"depth": 4}, "added": "x"}
    assert [
        "lr: 0.1 → 0.2",
        "model.depth: 3 → 4",
        "gone: removed (was 1)",
        "added: added ('x')",
    ] == config_changes(old, new)


def test_config_changes_see_int_versus_float() -> None:
    assert ["x: 1 → 1.0"] == config_changes({"x": 1}, {"x": 1.0})


def test_top_level_keys_become_strings_as_the_sheet_schema_requires() -> None:
    assert {"1": "a", "b": {2: "c"}} == config_to_dict({1: "a", "b": {2: "c"}})
