"""The `slurm.yaml` schema: what a user may ask of Slurm, checked before anything is submitted.

Each key maps to one submitit `SlurmExecutor` parameter (and so to one `#SBATCH`
line); `to_submitit()` does the mapping. Validation is hand-written rather than
done by cattrs because every message must name the key, the value and what is
accepted, in the user's own terms.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from flexlock.core._errors import ConfigError

__all__ = ["SlurmConfig", "parse_time", "slurm_config"]

# Names users bring from submitit or sbatch, and the key they mean here.
_ALIASES = {
    "timeout_min": "time",
    "slurm_time": "time",
    "slurm_partition": "partition",
    "slurm_account": "account",
    "slurm_qos": "qos",
    "slurm_constraint": "constraint",
    "slurm_array_parallelism": "array_parallelism",
    "slurm_setup": "setup",
    "slurm_additional_parameters": "additional_parameters",
    "slurm_signal_delay_s": "signal_delay_s",
    "slurm_job_name": "job_name",
    "mem": "mem_gb",
    "gpus": "gpus_per_node",
    "name": "job_name",
    "folder": "log_dir",
}

# sbatch options flexlock sets itself; setting them through additional_parameters would
# break job arrays, log collection or result retrieval.
_RESERVED_SBATCH = frozenset(
    {"array", "output", "error", "wrap", "parsable", "open_mode", "signal", "requeue"}
)

_SLURM_TIME = re.compile(r"(?:(?P<days>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?")


def parse_time(value: object) -> int:
    """Return a Slurm time limit in whole minutes (rounded up).

    Accepts an integer number of minutes or any sbatch `--time` format:
    `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`.

    Raises:
        ValueError: the value is not a positive time limit.
    """
    if isinstance(value, bool):
        raise ValueError("expected minutes or a Slurm time string, got a boolean")
    if isinstance(value, int):
        minutes = value
    elif isinstance(value, float) and value.is_integer():
        minutes = int(value)
    elif isinstance(value, str):
        match = _SLURM_TIME.fullmatch(value.strip())
        if match is None:
            raise ValueError(
                f"{value!r} is not a Slurm time "
                "(minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS)"
            )
        days = int(match["days"] or 0)
        parts = [int(part) for part in (match["a"], match["b"], match["c"]) if part is not None]
        if match["days"] is not None:  # D-HH[:MM[:SS]]
            parts += [0] * (3 - len(parts))
            seconds = ((days * 24 + parts[0]) * 60 + parts[1]) * 60 + parts[2]
        elif len(parts) == 1:  # MM
            seconds = parts[0] * 60
        elif len(parts) == 2:  # MM:SS
            seconds = parts[0] * 60 + parts[1]
        else:  # HH:MM:SS
            seconds = (parts[0] * 60 + parts[1]) * 60 + parts[2]
        minutes = math.ceil(seconds / 60)
    else:
        raise ValueError(f"expected minutes or a Slurm time string, got {type(value).__name__}")
    if minutes <= 0:
        raise ValueError(f"the time limit must be at least 1 minute, got {value!r}")
    return minutes


def _positive_int(key: str, value: object, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"slurm config: {key}={value!r} is invalid; expected an integer >= {minimum}"
        )
    return value


def _text(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"slurm config: {key}={value!r} is invalid; expected a non-empty string")
    return value.strip()


def _setup_lines(key: str, value: object) -> tuple[str, ...]:
    # A single string is one shell line, as users write `setup: module load cuda`.
    lines = [value] if isinstance(value, str) else value
    if not isinstance(lines, list | tuple) or not all(isinstance(line, str) for line in lines):
        raise ConfigError(
            f"slurm config: {key}={value!r} is invalid; expected a list of shell lines, "
            'e.g. ["module load cuda", "source ~/venv/bin/activate"]'
        )
    return tuple(lines)


def _sbatch_parameters(key: str, value: object) -> dict[str, str | int | float | bool]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"slurm config: {key}={value!r} is invalid; expected a mapping of sbatch options, "
            "e.g. {mail_type: END, exclude: node07}"
        )
    parameters: dict[str, str | int | float | bool] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
            raise ConfigError(f"slurm config: {key}: {name!r} is not an sbatch option name")
        option = name.replace("-", "_")
        if option in _RESERVED_SBATCH:
            raise ConfigError(
                f"slurm config: {key}.{name} is set by flexlock itself (job arrays, logs and "
                "results depend on it); remove it"
            )
        if not isinstance(item, str | int | float | bool):
            raise ConfigError(
                f"slurm config: {key}.{name}={item!r} is invalid; "
                "expected a string, number or boolean"
            )
        parameters[option] = item
    return parameters


@attrs.frozen(kw_only=True)
class SlurmConfig:
    """The validated content of `slurm.yaml` (all keys optional).

    Attributes:
        partition: Slurm partition (`--partition`); the cluster's default when unset.
        time: time limit per task in minutes (`--time`); YAML may give `"HH:MM:SS"` etc.
        cpus_per_task: CPUs per task (`--cpus-per-task`).
        mem_gb: memory per task in GB (`--mem`).
        gpus_per_node: GPUs per task (`--gpus-per-node`).
        account: account to charge (`--account`).
        qos: quality of service (`--qos`).
        constraint: node features (`--constraint`).
        array_parallelism: at most this many tasks of an array run at once (`--array=...%N`).
        setup: shell lines run in the batch script before the task (module loads, ...).
        additional_parameters: any other sbatch option, `{mail_type: END}` -> `--mail-type=END`.
        job_name: Slurm job name (`--job-name`).
        signal_delay_s: ask Slurm to send USR2 this many seconds before the time limit
            (logged in the job's stderr); unset, no warning signal is sent.
        log_dir: where job scripts, logs and result files go (must be on a shared filesystem).
        max_array_size: split arrays into at most this many tasks (the cluster's
            `MaxArraySize` always applies too).
        poll_interval_s: longest pause between two status queries while waiting.
        python: command that starts Python on the node (default: this interpreter), e.g.
            `apptainer exec image.sif python`.
        no_wait: submit and return at once, printing the job ids (`--no_wait`).
    """

    partition: str | None = None
    time: int = 60
    cpus_per_task: int = 1
    mem_gb: float | None = None
    gpus_per_node: int | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    array_parallelism: int | None = None
    setup: tuple[str, ...] = ()
    additional_parameters: dict[str, str | int | float | bool] = attrs.field(factory=dict)
    job_name: str = "flexlock"
    signal_delay_s: int | None = None
    log_dir: str = "slurm-logs"
    max_array_size: int | None = None
    poll_interval_s: float = 10.0
    python: str | None = None
    no_wait: bool = False

    def to_submitit(self) -> dict[str, Any]:
        """Return the keyword arguments for `submitit.SlurmExecutor.update_parameters`."""
        parameters: dict[str, Any] = {
            "job_name": self.job_name,
            "time": self.time,
            "cpus_per_task": self.cpus_per_task,
            # One task per job: the task itself decides how to use its CPUs/GPUs.
            "nodes": 1,
            "ntasks_per_node": 1,
        }
        optional = {
            "partition": self.partition,
            "gpus_per_node": self.gpus_per_node,
            "account": self.account,
            "qos": self.qos,
            "constraint": self.constraint,
            "array_parallelism": self.array_parallelism,
            "signal_delay_s": self.signal_delay_s,
        }
        parameters.update({key: value for key, value in optional.items() if value is not None})
        if self.mem_gb is not None:
            # Whole gigabytes as "8GB", anything else in MB: sbatch takes integers only.
            whole = self.mem_gb.is_integer()
            parameters["mem"] = (
                f"{int(self.mem_gb)}GB" if whole else f"{math.ceil(self.mem_gb * 1024)}MB"
            )
        if self.setup:
            parameters["setup"] = list(self.setup)
        additional = dict(self.additional_parameters)
        if self.signal_delay_s is None:
            # submitit always asks Slurm for a USR2 warning before the time limit, and
            # Slurm may send it up to 60 s early: with a short limit it can arrive while
            # the job's Python is still starting, before any handler exists, and USR2's
            # default action kills the task (exit 140, state FAILED instead of TIMEOUT).
            # Unless the user asks for the warning, it is SIGURG, ignored by default.
            additional["signal"] = "URG@90"
        if additional:
            parameters["additional_parameters"] = additional
        return parameters


_FIELDS = tuple(field.name for field in attrs.fields(SlurmConfig))
# Options the CLI adds next to the file's keys; `n_jobs` caps concurrency like array_parallelism.
_CLI_OPTIONS = ("n_jobs",)


def _unknown_key_message(key: str) -> str:
    valid = ", ".join(_FIELDS)
    hint = ""
    if key in _ALIASES:
        hint = f" (did you mean {_ALIASES[key]!r}?)"
    else:
        close = difflib.get_close_matches(key, _FIELDS, n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    return f"slurm config: unknown key {key!r}{hint}; valid keys: {valid}"


def slurm_config(options: Mapping[str, Any]) -> SlurmConfig:
    """Validate the parsed `slurm.yaml` mapping (plus CLI options) and return a `SlurmConfig`.

    Raises:
        ConfigError: a key is unknown or a value is invalid; the message names the key
            and what is accepted (exit code 2).
    """
    if not isinstance(options, Mapping):
        raise ConfigError(
            f"slurm config: expected a mapping of options, got {type(options).__name__}"
        )
    for key in options:
        if not isinstance(key, str):
            raise ConfigError(f"slurm config: key {key!r} is not a string")
        if key not in _FIELDS and key not in _CLI_OPTIONS:
            raise ConfigError(_unknown_key_message(key))
    values: dict[str, Any] = {}
    for key, value in options.items():
        if value is None and key != "no_wait":
            continue  # `key:` with no value in YAML means "use the default"
        if key in (
            "partition",
            "account",
            "qos",
            "constraint",
            "job_name",
            "log_dir",
            "python",
        ):
            values[key] = _text(key, value)
        elif key == "time":
            try:
                values[key] = parse_time(value)
            except ValueError as error:
                raise ConfigError(f"slurm config: time={value!r} is invalid: {error}") from None
        elif key in ("cpus_per_task", "array_parallelism", "max_array_size"):
            values[key] = _positive_int(key, value)
        elif key in ("gpus_per_node", "signal_delay_s"):
            values[key] = _positive_int(key, value, minimum=0)
        elif key in ("mem_gb", "poll_interval_s"):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(
                    f"slurm config: {key}={value!r} is invalid; expected a positive number"
                )
            values[key] = float(value)
        elif key == "setup":
            values[key] = _setup_lines(key, value)
        elif key == "additional_parameters":
            values[key] = _sbatch_parameters(key, value)
        elif key == "no_wait":
            if not isinstance(value, bool):
                raise ConfigError(
                    f"slurm config: no_wait={value!r} is invalid; expected true or false"
                )
            values[key] = value
        elif key == "n_jobs" and value != -1:  # joblib's -1 ("all") means no cap
            # --n_jobs N with Slurm: at most N tasks of the array at once, unless the file says.
            values.setdefault("array_parallelism", _positive_int("n_jobs", value))
    signal_delay = values.get("signal_delay_s")
    if signal_delay is not None and signal_delay >= values.get("time", 60) * 60:
        raise ConfigError(
            f"slurm config: signal_delay_s={signal_delay} is not shorter than the time limit "
            f"({values.get('time', 60)} min); the job would be warned as soon as it starts"
        )
    return SlurmConfig(**values)
