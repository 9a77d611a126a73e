"""The strict loader refuses deep nesting and non-standard tags (issue 20, item 2)."""

from __future__ import annotations

import pytest

from flexlock.core import ConfigError, load_yaml


def _text(value: str) -> str:
    return "T:" + value


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("aliases", [True, False])
@pytest.mark.parametrize("depth", [500, 10000])
def test_deep_nesting_is_a_located_error_not_a_recursion_error(
    fast: bool, aliases: bool, depth: int
) -> None:
    # libyaml stops at 1000 levels on its own; under that, and in PyYAML's parser,
    # the cap is flexlock's.
    expected = "nested more than 100" if depth < 1000 or not fast else "maximum nesting depth"
    with pytest.raises(ConfigError, match=rf"c\.yml(:\d+)?: invalid YAML: .*{expected}"):
        load_yaml("x: " + "[" * depth + "]" * depth, source="c.yml", fast=fast, aliases=aliases)


@pytest.mark.parametrize("fast", [True, False])
def test_unclosed_deep_nesting_is_a_located_error(fast: bool) -> None:
    with pytest.raises(ConfigError, match=r"c\.yml(:\d+)?: invalid YAML: "):
        load_yaml("x: " + "[" * 10000, source="c.yml", fast=fast, untyped=_text, aliases=True)


def test_deep_nesting_of_a_one_line_value_names_its_column() -> None:
    with pytest.raises(ConfigError, match=r"column \d+: .*nested more than 100"):
        load_yaml("[" * 500 + "]" * 500, source=None, untyped=_text, aliases=True)


def test_nesting_within_the_cap_loads() -> None:
    value = load_yaml("[" * 50 + "1" + "]" * 50)
    for _ in range(50):
        value = value[0]
    assert value == 1


@pytest.mark.parametrize("fast", [True, False])
def test_python_tag_on_a_plain_scalar_is_refused_not_turned_into_text(fast: bool) -> None:
    with pytest.raises(ConfigError, match=r"c\.yml:2: .*python/name:os\.system"):
        load_yaml(
            "a: 1\nb: !!python/name:os.system\n",
            source="c.yml",
            untyped=_text,
            aliases=True,
            fast=fast,
        )


def test_plain_scalars_still_reach_untyped() -> None:
    assert load_yaml("[012, no, !!str 5, null]", untyped=_text) == [
        "T:012",
        "T:no",
        "T:5",
        None,
    ]


def test_a_huge_document_is_refused_by_its_size_before_parsing() -> None:
    # Found by benchmarks/trial_hostile.py: a 60 MB config was parsed for a minute, then
    # refused as an "alias bomb" though it had no alias. Size is now refused unparsed.
    text = "name: " + "x" * (17 * 1024 * 1024) + "\n"
    with pytest.raises(ConfigError) as refused:
        load_yaml(text, source="c.yml", aliases=True)
    message = str(refused.value)
    assert message.startswith("c.yml: ")
    assert "over the YAML size cap" in message
    assert "alias" not in message


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("prefix", ["a: 1\n", "a: é\n"])
def test_a_control_character_is_one_located_line(fast: bool, prefix: str) -> None:
    # PyYAML's own text for it spans two lines ('in "<unicode string>", position N').
    with pytest.raises(ConfigError) as raised:
        load_yaml(prefix + "b: x\x00y\n", source="c.yml", fast=fast)
    message = str(raised.value)
    assert ("\n" in message, message.split(": invalid YAML", maxsplit=1)[0]) == (False, "c.yml:2")
    assert "#x0000" in message
