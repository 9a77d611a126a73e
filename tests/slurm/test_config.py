"""slurm.yaml validation and its mapping to submitit (no cluster needed)."""

from __future__ import annotations

import pytest

from flexlock.core import ConfigError
from flexlock.slurm import SlurmConfig, slurm_config, slurm_executor
from flexlock.slurm._config import parse_time


def test_empty_config_gives_defaults() -> None:
    assert SlurmConfig() == slurm_config({})


def test_unknown_key_is_named_with_valid_keys() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown key 'partiton' \(did you mean 'partition'\?\).*valid keys: partition, time",
    ):
        slurm_config({"partiton": "gpu"})


def test_submitit_spelling_points_to_our_key() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'timeout_min' \(did you mean 'time'\?\)"):
        slurm_config({"timeout_min": 10})


def test_unknown_key_fails_in_factory_before_submission() -> None:
    with pytest.raises(ConfigError, match="unknown key 'gpus_per_task'") as caught:
        slurm_executor({"gpus_per_task": 1})
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cpus_per_task", 0),
        ("cpus_per_task", "4"),
        ("cpus_per_task", True),
        ("mem_gb", -1),
        ("mem_gb", "8G"),
        ("array_parallelism", 0),
        ("gpus_per_node", -1),
        ("partition", ""),
        ("partition", 3),
        ("time", "ten minutes"),
        ("time", 0),
        ("setup", [1, 2]),
        ("additional_parameters", ["mail_type=END"]),
        ("no_wait", "yes"),
    ],
)
def test_bad_value_is_named(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"slurm config: {key}"):
        slurm_config({key: value})


@pytest.mark.parametrize(
    ("given", "minutes"),
    [
        (30, 30),
        ("30", 30),
        ("1:30", 2),
        ("01:00:00", 60),
        ("2-0", 2880),
        ("1-02:30", 1590),
        ("0:0:59", 1),
    ],
)
def test_time_accepts_sbatch_formats(given: object, minutes: int) -> None:
    assert minutes == parse_time(given)


def test_signal_delay_must_be_shorter_than_time_limit() -> None:
    with pytest.raises(ConfigError, match="signal_delay_s=120 is not shorter than the time limit"):
        slurm_config({"time": 2, "signal_delay_s": 120})


def test_reserved_sbatch_option_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"additional_parameters.array is set by flexlock"):
        slurm_config({"additional_parameters": {"array": "0-3"}})


def test_without_signal_delay_the_warning_signal_is_harmless() -> None:
    assert {"signal": "URG@90"} == slurm_config({}).to_submitit()["additional_parameters"]


def test_single_setup_line_becomes_a_list() -> None:
    assert slurm_config({"setup": "module load cuda"}).setup == ("module load cuda",)


def test_n_jobs_caps_array_parallelism_when_file_does_not() -> None:
    assert slurm_config({"n_jobs": 3}).array_parallelism == 3


def test_file_array_parallelism_wins_over_n_jobs() -> None:
    assert slurm_config({"n_jobs": 3, "array_parallelism": 5}).array_parallelism == 5


def test_yaml_null_means_default() -> None:
    assert SlurmConfig() == slurm_config({"partition": None, "mem_gb": None})


def test_every_option_maps_to_a_submitit_parameter() -> None:
    config = slurm_config(
        {
            "partition": "gpu",
            "time": "02:00:00",
            "cpus_per_task": 4,
            "mem_gb": 1.5,
            "gpus_per_node": 1,
            "account": "proj",
            "qos": "high",
            "constraint": "a100",
            "array_parallelism": 8,
            "setup": ["module load cuda"],
            "additional_parameters": {"mail-type": "END"},
            "job_name": "sweep",
            "signal_delay_s": 60,
        }
    )
    assert config.to_submitit() == {
        "job_name": "sweep",
        "time": 120,
        "cpus_per_task": 4,
        "nodes": 1,
        "ntasks_per_node": 1,
        "partition": "gpu",
        "gpus_per_node": 1,
        "account": "proj",
        "qos": "high",
        "constraint": "a100",
        "array_parallelism": 8,
        "signal_delay_s": 60,
        "mem": "1536MB",
        "setup": ["module load cuda"],
        "additional_parameters": {"mail_type": "END"},
    }


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    with pytest.raises(ConfigError) as caught:
        slurm_config({"cpus_per_task": 0, "partiton": "gpu", "mem_gb": "8G"})

    messages = str(caught.value).splitlines()
    assert [
        "slurm config: cpus_per_task=0 is invalid; expected an integer >= 1",
        "slurm config: unknown key 'partiton' (did you mean 'partition'?)",
        "slurm config: mem_gb='8G' is invalid; expected a positive number",
    ] == [message.partition("; valid keys")[0] for message in messages]


class _WithLines(dict[str, object]):
    """A mapping as flexlock's YAML loader returns it with `lines=True`."""

    lines: dict[str, int]


def test_problem_names_file_and_line_when_the_mapping_has_lines() -> None:
    options = _WithLines({"time": 5, "cpus_per_task": "4"})
    options.lines = {"time": 1, "cpus_per_task": 2}

    with pytest.raises(
        ConfigError, match=r"^slurm\.yaml:2: slurm config: cpus_per_task='4' is invalid"
    ):
        slurm_config(options, source="slurm.yaml")


def test_n_jobs_must_be_a_positive_integer() -> None:
    with pytest.raises(ConfigError, match=r"n_jobs=0 is invalid; expected an integer >= 1"):
        slurm_config({"n_jobs": 0})


def test_check_of_every_field_is_declared() -> None:
    import attrs

    from flexlock.slurm._config import CHECK

    assert [] == [field.name for field in attrs.fields(SlurmConfig) if CHECK not in field.metadata]
