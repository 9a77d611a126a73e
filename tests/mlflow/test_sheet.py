"""Run sheet → MLflow params/tags: keys MLflow accepts, no collisions, values within limits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _validate_param_name

from flexlock.core import DataRecord, EnvRecord, RepoRecord, RunLock
from flexlock.mlflow import logical_run_key
from flexlock.mlflow._sheet import (
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    TRUNCATION_MARKER,
    flatten_config,
    sanitise_key,
    sheet_params,
    sheet_tags,
    truncate,
    unique_keys,
)

pytestmark = pytest.mark.needs_mlflow


def _mlflow_accepts(key: str) -> bool:
    # MLflow's own validator is the ground truth for what a store accepts.
    try:
        _validate_param_name(key)
    except MlflowException:
        return False
    return len(key) <= MAX_KEY_LENGTH


@settings(deadline=None)  # a shared, noisy machine
@given(st.text(max_size=400))
def test_sanitised_keys_pass_mlflow_validation(key: str) -> None:
    assert _mlflow_accepts(sanitise_key(key))


@settings(deadline=None)  # a shared, noisy machine
@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}(\.[A-Za-z0-9_-]{1,10}){0,4}", fullmatch=True))
def test_valid_dotted_keys_are_kept_as_they_are(key: str) -> None:
    assert key == sanitise_key(key)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a[0]", "a_0_"),
        ("a=b", "a_b"),
        ("/abs/path", "abs/path"),
        ("a//b", "a/b"),
        ("a/../b", "a/_/b"),
    ],
)
def test_rejected_characters_and_paths_are_rewritten_readably(key: str, expected: str) -> None:
    assert expected == sanitise_key(key)


@settings(deadline=None)  # a shared, noisy machine
@given(st.lists(st.text(max_size=300), unique=True, max_size=20))
def test_unique_keys_maps_distinct_keys_to_distinct_valid_keys(keys: list[str]) -> None:
    mapped = unique_keys(keys)
    assert len(keys) == len(set(mapped.values()))
    assert all(_mlflow_accepts(key) for key in mapped.values())


def test_colliding_key_gets_a_hash_suffix_and_the_clean_one_keeps_its_name() -> None:
    mapped = unique_keys(["a_0_", "a[0]"])
    assert {"a_0_": "a_0_", "a[0]": f"a_0_-{hashlib.sha256(b'a[0]').hexdigest()[:8]}"} == mapped


def test_long_keys_with_a_common_prefix_stay_distinct_and_within_250_chars() -> None:
    first, second = "k" * 300 + "1", "k" * 300 + "2"
    mapped = unique_keys([first, second])
    assert mapped[first] != mapped[second]
    assert max(len(mapped[first]), len(mapped[second])) <= MAX_KEY_LENGTH


def test_truncate_cuts_to_the_limit_and_ends_with_the_marker() -> None:
    cut = truncate("x" * 7000, MAX_PARAM_VALUE_LENGTH)
    assert (len(cut), cut.endswith(TRUNCATION_MARKER)) == (MAX_PARAM_VALUE_LENGTH, True)


def test_truncate_leaves_a_value_at_the_limit_alone() -> None:
    assert (
        truncate("x" * MAX_PARAM_VALUE_LENGTH, MAX_PARAM_VALUE_LENGTH)
        == "x" * MAX_PARAM_VALUE_LENGTH
    )


def test_flatten_config_dots_nested_mappings_and_indexes_lists_of_mappings() -> None:
    config = {"model": {"lr": 0.1, "layers": [{"dim": 3}, {"dim": 4}]}, "name": "x"}
    assert flatten_config(config) == {
        "model.lr": "0.1",
        "model.layers.0.dim": "3",
        "model.layers.1.dim": "4",
        "name": "x",
    }


def test_flatten_config_keeps_scalar_lists_and_empty_mappings_as_one_json_value() -> None:
    flat = flatten_config({"seeds": [1, 2, 3], "tags": ["a", "é"], "extra": {}, "none": None})
    assert flat == {"seeds": "[1, 2, 3]", "tags": '["a", "é"]', "extra": "{}", "none": "None"}
    assert json.loads(flat["seeds"]) == [1, 2, 3]


def test_sheet_params_sanitises_keys_and_truncates_long_values() -> None:
    sheet = RunLock(id="sha256:1", status="succeeded", created="t", config={"a[0]": "v" * 9000})
    params = sheet_params(sheet)
    assert list(params) == ["a_0_"]
    assert (len(params["a_0_"]), params["a_0_"].endswith(TRUNCATION_MARKER)) == (
        MAX_PARAM_VALUE_LENGTH,
        True,
    )


def test_logical_run_key_is_the_same_for_relative_absolute_and_symlinked_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "results" / "train"
    real.mkdir(parents=True)
    (tmp_path / "latest").symlink_to(real)
    monkeypatch.chdir(tmp_path)
    keys = {
        logical_run_key(p) for p in ("results/train", real, "latest", "results/../results/train/")
    }
    assert {hashlib.sha256(str(real.resolve()).encode()).hexdigest()} == keys


def _repo(root: str, commit: str) -> RepoRecord:
    return RepoRecord(
        root=root, commit=commit, branch="main", remote=None, dirty=False, tree="t" * 40
    )


def test_sheet_tags_describe_the_script_repo_with_mlflow_source_tags() -> None:
    sheet = RunLock(
        id="sha256:1",
        status="succeeded",
        created="t",
        code={"lib": _repo("/w/lib", "1" * 40), "proj": _repo("/w/proj", "2" * 40)},
        env=EnvRecord(python="3.11", implementation="CPython", platform="Linux", hostname="h",
                      user="alice", cwd="/w/proj", argv=("train.py",)),
    )  # fmt: skip
    core, _ = sheet_tags(sheet)
    assert (
        core["mlflow.source.git.commit"],
        core["mlflow.source.git.branch"],
        core["mlflow.user"],
    ) == ("2" * 40, "main", "alice")


def test_sheet_tags_name_repos_with_the_same_folder_name_apart() -> None:
    sheet = RunLock(
        id="sha256:1",
        status="succeeded",
        created="t",
        code={"a/src": _repo("/a/src", "1" * 40), "b/src": _repo("/b/src", "2" * 40)},
    )
    _, detail = sheet_tags(sheet)
    commits = {value for key, value in detail.items() if key.endswith(".commit")}
    assert {"1" * 40, "2" * 40} == commits


def test_sheet_tags_record_every_data_hash() -> None:
    sheet = RunLock(
        id="sha256:1",
        status="succeeded",
        created="t",
        data={
            "data/a.csv": DataRecord(hash="sha256:aa", size=1),
            "/abs/b": DataRecord(hash="sha256:bb", size=1),
        },
    )
    _, detail = sheet_tags(sheet)
    assert {key: value for key, value in detail.items() if key.startswith("flexlock.data.")} == {
        "flexlock.data.data/a.csv": "sha256:aa",
        "flexlock.data./abs/b": "sha256:bb",
    }
