"""Config classes, merging and conversion by field type (flexlock.cli._config)."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Any, Literal, Optional

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flexlock.cli._config import (
    ConfigTree,
    Text,
    _ConversionError,
    build,
    config_fields,
    convert,
    load_yaml_file,
)
from flexlock.cli._tree import structure_options
from flexlock.core import ConfigError, load_yaml


class Color(enum.Enum):
    red = "r"
    blue = "b"


@attrs.define
class Model:
    lr: float = 0.01
    """Learning rate."""
    layers: list[int] = attrs.field(factory=lambda: [64, 64], metadata={"help": "Hidden sizes."})


@attrs.define
class Config:
    param: int = 1
    name: str = "abc"
    model: Model = attrs.field(factory=Model)


@dataclasses.dataclass
class DataConfig:
    param: int = 1
    tags: list[str] = dataclasses.field(default_factory=list, metadata={"help": "Tags."})


class PlainConfig:
    param = 1
    save_dir = "results/process"

    class model:  # noqa: N801 - the seed's style: a nested class as a section
        lr = 0.1


# -- conversion of text by target type --------------------------------------------------------


def test_text_on_str_field_keeps_leading_zero() -> None:
    assert convert(Text("012"), str) == "012"


def test_exponent_text_on_float_field_is_a_float() -> None:
    assert convert(Text("1e-3"), float) == 0.001


def test_text_on_int_field_is_decimal_not_octal() -> None:
    assert convert(Text("012"), int) == 12


def test_non_integer_text_on_int_field_is_rejected() -> None:
    with pytest.raises(_ConversionError, match="expected an integer"):
        convert(Text("1.5"), int)


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), ("no", False), ("1", True), ("off", False)]
)
def test_bool_words_convert(text: str, expected: bool) -> None:
    assert expected is convert(Text(text), bool)


def test_yes_on_str_field_stays_text() -> None:
    assert convert(Text("yes"), str) == "yes"


def test_null_on_optional_is_none() -> None:
    assert None is convert(Text("null"), Optional[int])  # noqa: UP045 - typing.Union form


def test_value_on_optional_converts_to_inner_type() -> None:
    assert convert(Text("3"), Optional[int]) == 3  # noqa: UP045 - typing.Union form


def test_int_or_str_prefers_int_for_numeric_text() -> None:
    assert convert(Text("3"), int | str) == 3


def test_literal_accepts_listed_choice() -> None:
    assert convert(Text("sgd"), Literal["adam", "sgd"]) == "sgd"


def test_literal_rejects_other_choice_listing_choices() -> None:
    with pytest.raises(_ConversionError, match="'adam', 'sgd'"):
        convert(Text("rmsprop"), Literal["adam", "sgd"])


def test_enum_by_member_name() -> None:
    assert Color.blue is convert(Text("blue"), Color)


def test_enum_by_member_value() -> None:
    assert Color.blue is convert(Text("b"), Color)


def test_path_field_gets_a_path() -> None:
    assert Path("data/x") == convert(Text("data/x"), Path)


def test_list_from_yaml_flow_syntax() -> None:
    assert convert(Text("[1, 2]"), list[int]) == [1, 2]


def test_dict_from_json_syntax() -> None:
    assert convert(Text('{"a": 1.5}'), dict[str, float]) == {"a": 1.5}


def test_list_items_keep_text_rules() -> None:
    assert convert(Text("[012, yes]"), list[str]) == ["012", "yes"]


def test_scalar_text_on_list_field_is_rejected_with_example() -> None:
    with pytest.raises(_ConversionError, match=r"\[1, 2\]"):
        convert(Text("64"), list[int])


def test_fixed_tuple_checks_length() -> None:
    with pytest.raises(_ConversionError, match="expected 2 items"):
        convert(Text("[1, 2, 3]"), tuple[int, int])


def test_any_field_takes_yaml_guess() -> None:
    assert convert(Text("3"), Any) == 3


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20))
def test_any_text_on_str_field_round_trips(text: str) -> None:
    assert text == convert(Text(text), str)


@given(st.integers())
def test_any_integer_text_on_int_field_round_trips(number: int) -> None:
    assert number == convert(Text(str(number)), int)


# -- fields and docstrings ---------------------------------------------------------------------


def test_attribute_docstring_is_field_help() -> None:
    assert config_fields(Model)[0].help == "Learning rate."


def test_attrs_metadata_help_is_field_help() -> None:
    assert config_fields(Model)[1].help == "Hidden sizes."


def test_dataclass_metadata_help_is_field_help() -> None:
    assert config_fields(DataConfig)[1].help == "Tags."


def test_plain_class_nested_class_is_a_section() -> None:
    tree = ConfigTree(PlainConfig)
    tree.set("model.lr", Text("0.5"), "-o model.lr")
    assert build(tree).model.lr == 0.5


# -- merging -----------------------------------------------------------------------------------


def test_nested_override_leaves_siblings_alone() -> None:
    tree = ConfigTree(Config)
    tree.set("model.lr", Text("0.5"), "-o model.lr")
    assert Model(lr=0.5, layers=[64, 64]) == build(tree).model


def test_unknown_key_suggests_closest() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'model\.lr'"):
        ConfigTree(Config).set("model.lrr", Text("1"), "-o model.lrr")


def test_setting_a_section_to_a_value_is_rejected() -> None:
    with pytest.raises(ConfigError, match="is a section"):
        ConfigTree(Config).set("model", Text("1"), "-o model")


def test_wrong_type_names_key_and_source(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("name: x\nparam: abc\n")
    tree = ConfigTree(Config)
    tree.merge_mapping(load_yaml_file(path), str(path))
    with pytest.raises(ConfigError, match=rf"'param' \({path}:2\): expected an integer"):
        build(tree)


def test_yaml_file_unquoted_zero_padded_on_str_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("name: 012\n")
    tree = ConfigTree(Config)
    tree.merge_mapping(load_yaml_file(path), str(path))
    assert build(tree).name == "012"


def test_yaml_dotted_keys_merge_like_nested(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("model.lr: 0.2\n")
    tree = ConfigTree(Config)
    tree.merge_mapping(load_yaml_file(path), str(path))
    assert build(tree).model.lr == 0.2


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("param: 1\nname: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: invalid YAML"):
        load_yaml_file(path)


def test_duplicate_yaml_key_is_rejected_with_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("param: 1\nparam: 2\n")
    with pytest.raises(ConfigError, match=rf"{path}:2: .*duplicate key 'param'"):
        load_yaml_file(path)


@attrs.define
class Required:
    needed: int


def test_missing_required_value_says_how_to_set_it() -> None:
    with pytest.raises(ConfigError, match="-o needed VALUE"):
        build(ConfigTree(Required))


@attrs.define
class Validated:
    rate: float = attrs.field(default=0.5, validator=attrs.validators.le(1.0))


def test_attrs_validator_failure_is_a_config_error() -> None:
    tree = ConfigTree(Validated)
    tree.set("rate", Text("2"), "-o rate")
    with pytest.raises(ConfigError, match="invalid config"):
        build(tree)


# -- detailed validation of items, and options mappings ----------------------------------------


def test_bad_list_item_is_named_by_its_index() -> None:
    with pytest.raises(_ConversionError, match=r"item \[1\]: expected an integer, got 'x'"):
        convert(Text("[1, x]"), list[int])


def test_bad_mapping_value_is_named_by_its_key() -> None:
    with pytest.raises(_ConversionError, match=r"item \['a'\]: expected a number"):
        convert({"a": Text("fast")}, dict[str, float])


def test_null_on_a_list_field_says_null() -> None:
    with pytest.raises(_ConversionError, match=r"expected list\[int\], got null"):
        convert(None, list[int])


class Mode(str, enum.Enum):
    fast = "f"


def test_enum_mixing_in_str_converts_by_member_name() -> None:
    assert Mode.fast is convert(Text("fast"), Mode)


@attrs.frozen
class Options:
    time: int = 60
    partition: str | None = None


def test_options_mapping_is_structured_by_field_type(tmp_path: Path) -> None:
    path = tmp_path / "opts.yml"
    path.write_text("time: 0120\npartition: 012\n")
    assert Options(time=120, partition="012") == structure_options(
        Options, load_yaml_file(path), str(path)
    )


def test_options_mapping_unknown_key_names_line_and_closest(tmp_path: Path) -> None:
    path = tmp_path / "opts.yml"
    path.write_text("time: 5\npartiton: gpu\n")
    with pytest.raises(ConfigError, match=rf"'partiton' \({path}:2\); did you mean 'partition'"):
        structure_options(Options, load_yaml_file(path), str(path))


# -- the strict YAML loader -------------------------------------------------------------------


def test_merge_key_may_be_overridden_in_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("base: &base {lr: 1, layers: [2]}\nmodel:\n  <<: *base\n  lr: 0.5\n")
    assert {"lr": "0.5", "layers": ["2"]} == load_yaml_file(path)["model"]


def test_alias_bomb_in_a_config_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
            for i in range(7)
        )
    )
    with pytest.raises(ConfigError, match=r"c\.yml:\d+: .*alias bomb"):
        load_yaml_file(path)


def test_strict_loader_refuses_aliases_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_yaml("a: &x 1\nb: *x\n")


def test_strict_loader_keeps_lines_of_keys_and_items() -> None:
    data = load_yaml("a: 1\nb:\n  - x\n  - y\n", lines=True)
    assert ({"a": 1, "b": 2}, [3, 4]) == (data.lines, data["b"].lines)


def test_strict_loader_keeps_unquoted_scalars_untyped() -> None:
    data = load_yaml("a: 012\nb: '1'\n", untyped=Text)
    assert ({"a": "012", "b": "1"}, Text, str) == (data, type(data["a"]), type(data["b"]))
