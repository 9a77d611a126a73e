"""`${...}` interpolation: references, env, resolvers, cycles (flexlock.cli._interpolation)."""

from __future__ import annotations

import pytest

from flexlock.cli._interpolation import interpolate
from flexlock.cli._yaml_text import Text
from flexlock.core import ConfigError, clear_registered, registered


def test_reference_inside_text() -> None:
    assert interpolate({"param": 3, "save_dir": "results/p${param}"})["save_dir"] == "results/p3"


def test_whole_value_reference_keeps_type() -> None:
    assert interpolate({"a": [1, 2], "b": "${a}"})["b"] == [1, 2]


def test_dotted_reference_into_section() -> None:
    assert Text("0.1x") == interpolate({"model": {"lr": "0.1"}, "tag": "${model.lr}x"})["tag"]


def test_reference_chain_resolves() -> None:
    assert interpolate({"a": "${b}", "b": "${c}", "c": "abc"})["a"] == "abc"


def test_cycle_is_an_error_naming_the_keys() -> None:
    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):
        interpolate({"a": "${b}", "b": "${a}"})


def test_missing_reference_names_key() -> None:
    with pytest.raises(ConfigError, match=r"'x': \$\{nope\} refers to a key that does not exist"):
        interpolate({"x": "${nope}"})


def test_env_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLOCK_TEST_VAR", "hello")
    assert interpolate({"x": "${env:FLEXLOCK_TEST_VAR}"})["x"] == "hello"


def test_env_default_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEXLOCK_TEST_VAR", raising=False)
    assert interpolate({"x": "${env:FLEXLOCK_TEST_VAR,a,b}"})["x"] == "a,b"


def test_env_unset_without_default_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEXLOCK_TEST_VAR", raising=False)
    with pytest.raises(ConfigError, match=r"\$\{env:FLEXLOCK_TEST_VAR,VALUE\}"):
        interpolate({"x": "${env:FLEXLOCK_TEST_VAR}"})


def test_nested_interpolation_in_resolver_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEXLOCK_TEST_VAR", raising=False)
    assert interpolate({"n": 7, "x": "${env:FLEXLOCK_TEST_VAR,d/${n}}"})["x"] == "d/7"


def test_unknown_resolver_lists_installed_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown flexlock.resolvers plugin 'nope' \(installed: .*env"
    ):
        interpolate({"x": "${nope:1}"})


def test_escaped_marker_is_literal() -> None:
    assert interpolate({"param": 1, "x": "\\${param}"})["x"] == "${param}"


def test_runlock_data_returns_path_and_registers_it() -> None:
    clear_registered()
    assert interpolate({"x": "${runlock_data:data/raw.csv}"})["x"] == "data/raw.csv"
    assert registered().data == ("data/raw.csv",)


def test_runlock_prev_registers_upstream_run() -> None:
    clear_registered()
    interpolate({"x": "${runlock_prev:results/prepare}"})
    assert registered().prevs == ("results/prepare",)
