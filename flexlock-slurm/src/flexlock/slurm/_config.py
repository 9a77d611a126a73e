"""The `slurm.yaml` schema: what a user may ask of Slurm, checked before anything is submitted.

`SlurmConfig` is the one model: each field declares its type, its default and
the check that turns a YAML value into it (`metadata[CHECK]`); a cattrs
converter built from those checks structures the mapping with detailed
validation, so every unknown key and every bad value is reported at once, each
naming the key, the value and what is accepted, in the user's own terms (and
`file:line` when the mapping carries the lines of its keys). Each key maps to
one submitit `SlurmExecutor` parameter (and so to one `#SBATCH` line);
`to_submitit()` does the mapping.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from flexlock.core import ConfigError

if TYPE_CHECKING:
    import cattrs

__all__ = ["CHECK", "SlurmConfig", "parse_time", "slurm_config"]

#: Field metadata key naming the check `(key, value) -> converted value` of a field.
CHECK = "flexlock.slurm.check"

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
    "max_num_timeout": "max_requeue",
    "batch_size": "tasks_per_job",
    "tasks_per_element": "tasks_per_job",
}

# sbatch options flexlock sets itself; setting them through additional_parameters would
# break job arrays, log collection or result retrieval.
_RESERVED_SBATCH = frozenset(
    {"array", "output", "error", "wrap", "parsable", "open_mode", "signal", "requeue"}
)

_SLURM_TIME = re.compile(r"(?:(?P<days>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?")

# Options the CLI adds next to the file's keys; `n_jobs` caps concurrency like array_parallelism.
_CLI_OPTIONS = ("n_jobs",)


class _InvalidError(ValueError):
    """A value a check refused: `message` names the key; `item` is the sub-key, if any."""

    def __init__(self, key: str, message: str, item: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.item = item


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


# -- checks: (key, YAML value) -> field value, or _InvalidError naming the key ---------------------


def _minutes(key: str, value: object) -> int:
    try:
        return parse_time(value)
    except ValueError as error:
        raise _InvalidError(key, f"{key}={value!r} is invalid: {error}") from None


def _integer(key: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _InvalidError(key, f"{key}={value!r} is invalid; expected an integer >= {minimum}")
    return value


def _count(key: str, value: object) -> int:
    return _integer(key, value, 1)


def _count_or_zero(key: str, value: object) -> int:
    return _integer(key, value, 0)


def _positive_number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _InvalidError(key, f"{key}={value!r} is invalid; expected a positive number")
    return float(value)


def _text(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _InvalidError(key, f"{key}={value!r} is invalid; expected a non-empty string")
    return value.strip()


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _InvalidError(key, f"{key}={value!r} is invalid; expected true or false")
    return value


def _setup_lines(key: str, value: object) -> tuple[str, ...]:
    # A single string is one shell line, as users write `setup: module load cuda`.
    lines = [value] if isinstance(value, str) else value
    if not isinstance(lines, list | tuple) or not all(isinstance(line, str) for line in lines):
        raise _InvalidError(
            key,
            f"{key}={value!r} is invalid; expected a list of shell lines, "
            'e.g. ["module load cuda", "source ~/venv/bin/activate"]',
        )
    return tuple(lines)


def _sbatch_parameters(key: str, value: object) -> dict[str, str | int | float | bool]:
    if not isinstance(value, Mapping):
        raise _InvalidError(
            key,
            f"{key}={value!r} is invalid; expected a mapping of sbatch options, "
            "e.g. {mail_type: END, exclude: node07}",
        )
    parameters: dict[str, str | int | float | bool] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
            raise _InvalidError(key, f"{key}: {name!r} is not an sbatch option name", item=name)
        option = name.replace("-", "_")
        if option in _RESERVED_SBATCH:
            raise _InvalidError(
                key,
                f"{key}.{name} is set by flexlock itself (job arrays, logs and results "
                "depend on it); remove it",
                item=name,
            )
        if not isinstance(item, str | int | float | bool):
            raise _InvalidError(
                key,
                f"{key}.{name}={item!r} is invalid; expected a string, number or boolean",
                item=name,
            )
        parameters[option] = item
    return parameters


def _check(check: Callable[[str, object], Any]) -> dict[str, Any]:
    return {CHECK: check}


@attrs.frozen(kw_only=True)
class SlurmConfig:
    """The validated content of `slurm.yaml` (all keys optional).

    Attributes:
        partition: Slurm partition (`--partition`); the cluster's default when unset.
        time: time limit per array element in minutes (`--time`), which runs
            `tasks_per_job` tasks one after another; YAML may give `"HH:MM:SS"` etc.
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
        tasks_per_job: run this many tasks one after another in each array element
            (one Python start and one script import for all of them).
        max_requeue: requeue an element stopped by its time limit or a preemption at
            most this many times (0: never, the task fails as before).
        no_wait: submit and return at once, printing the job ids (`--no_wait`).
    """

    partition: str | None = attrs.field(default=None, metadata=_check(_text))
    time: int = attrs.field(default=60, metadata=_check(_minutes))
    cpus_per_task: int = attrs.field(default=1, metadata=_check(_count))
    mem_gb: float | None = attrs.field(default=None, metadata=_check(_positive_number))
    gpus_per_node: int | None = attrs.field(default=None, metadata=_check(_count_or_zero))
    account: str | None = attrs.field(default=None, metadata=_check(_text))
    qos: str | None = attrs.field(default=None, metadata=_check(_text))
    constraint: str | None = attrs.field(default=None, metadata=_check(_text))
    array_parallelism: int | None = attrs.field(default=None, metadata=_check(_count))
    setup: tuple[str, ...] = attrs.field(default=(), metadata=_check(_setup_lines))
    additional_parameters: dict[str, str | int | float | bool] = attrs.field(
        factory=dict, metadata=_check(_sbatch_parameters)
    )
    job_name: str = attrs.field(default="flexlock", metadata=_check(_text))
    signal_delay_s: int | None = attrs.field(default=None, metadata=_check(_count_or_zero))
    log_dir: str = attrs.field(default="slurm-logs", metadata=_check(_text))
    max_array_size: int | None = attrs.field(default=None, metadata=_check(_count))
    poll_interval_s: float = attrs.field(default=10.0, metadata=_check(_positive_number))
    python: str | None = attrs.field(default=None, metadata=_check(_text))
    tasks_per_job: int = attrs.field(default=1, metadata=_check(_count))
    max_requeue: int = attrs.field(default=0, metadata=_check(_count_or_zero))
    no_wait: bool = attrs.field(default=False, metadata=_check(_flag))

    @signal_delay_s.validator
    def _warning_before_the_limit(self, attribute: Any, value: int | None) -> None:
        if value is not None and value >= self.time * 60:
            raise _InvalidError(
                attribute.name,
                f"{attribute.name}={value} is not shorter than the time limit ({self.time} min); "
                "the job would be warned as soon as it starts",
            )

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
        if self.max_requeue:
            additional["requeue"] = True  # requeueable even where the cluster's JobRequeue=0
        if additional:
            parameters["additional_parameters"] = additional
        return parameters


_FIELDS = tuple(field.name for field in attrs.fields(SlurmConfig))


@functools.cache
def _converter() -> cattrs.Converter:
    """Build the converter for `slurm.yaml`: each field structured by its own check."""
    import cattrs
    from cattrs.gen import make_dict_structure_fn, override

    def hook(name: str, check: Callable[[str, object], Any]) -> Callable[[Any, Any], Any]:
        return lambda value, _type: check(name, value)

    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    overrides: dict[str, Any] = {
        field.name: override(struct_hook=hook(field.name, field.metadata[CHECK]))
        for field in attrs.fields(SlurmConfig)
    }
    converter.register_structure_hook(
        SlurmConfig, make_dict_structure_fn(SlurmConfig, converter, **overrides)
    )
    return converter


def _unknown_key_message(key: str) -> str:
    valid = ", ".join(_FIELDS)
    hint = ""
    if key in _ALIASES:
        hint = f" (did you mean {_ALIASES[key]!r}?)"
    else:
        close = difflib.get_close_matches(key, _FIELDS, n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    return f"unknown key {key!r}{hint}; valid keys: {valid}"


class _Locator:
    """Say where a key is: `file:line: ` when the mapping carries the lines of its keys.

    flexlock's strict YAML loader (`lines=True`) returns mappings with a `lines`
    attribute ({key: 1-based line}); the file is the `source` argument or the
    mapping's own `source` attribute.
    """

    def __init__(self, options: Mapping[Any, Any], source: str | None) -> None:
        self.options = options
        self.source = source or getattr(options, "source", None)

    def __call__(self, key: object, item: object = None) -> str:
        line = _line_of(self.options, key)
        if item is not None:
            line = _line_of(self.options.get(key), item) or line
        if self.source and line:
            return f"{self.source}:{line}: "
        if self.source:
            return f"{self.source}: "
        return f"line {line}: " if line else ""


def _line_of(mapping: object, key: object) -> int | None:
    lines = getattr(mapping, "lines", None)
    line = lines.get(key) if isinstance(lines, Mapping) else None
    return line if isinstance(line, int) else None


def _problems(error: cattrs.ClassValidationError) -> list[tuple[object, str, str | None]]:
    """Return (key, message, sub-key) for every problem cattrs collected."""
    from cattrs import ForbiddenExtraKeysError
    from cattrs.v import transform_error

    problems: list[tuple[object, str, str | None]] = []
    for exception in error.exceptions:
        if isinstance(exception, _InvalidError):
            problems.append((exception.key, str(exception), exception.item))
        elif isinstance(exception, ForbiddenExtraKeysError):
            problems += [(key, _unknown_key_message(key), None) for key in exception.extra_fields]
        else:  # not raised by a check (a bug): still name what cattrs knows
            problems += [("", message, None) for message in transform_error(exception)]
    return problems


def slurm_config(options: Mapping[str, Any], *, source: str | None = None) -> SlurmConfig:
    """Validate the parsed `slurm.yaml` mapping (plus CLI options) and return a `SlurmConfig`.

    Args:
        options: the file's keys, plus `n_jobs` (and `no_wait`) from the command line.
            `key:` with no value (YAML null) means the key's default.
        source: the file the mapping came from, named in errors (with the key's line
            when the mapping has a `lines` attribute, as flexlock's YAML loader gives).

    Raises:
        ConfigError: a key is unknown or a value is invalid; the message has one line
            per problem, each naming the key and what is accepted (exit code 2).
    """
    if not isinstance(options, Mapping):
        raise ConfigError(
            f"slurm config: expected a mapping of options, got {type(options).__name__}"
        )
    where = _Locator(options, source)
    problems: list[tuple[object, str, str | None]] = []
    values: dict[str, Any] = {}
    for key, value in options.items():
        if not isinstance(key, str):
            problems.append((key, f"key {key!r} is not a string", None))
        elif value is not None or key == "no_wait":  # no_wait: null is not a boolean
            values[key] = value
    n_jobs = values.pop("n_jobs", None)
    if n_jobs is not None and n_jobs != -1:  # joblib's -1 ("all") means no cap
        # --n_jobs N with Slurm: at most N tasks of the array at once, unless the file says.
        try:
            values.setdefault("array_parallelism", _count("n_jobs", n_jobs))
        except _InvalidError as invalid:
            problems.append((invalid.key, str(invalid), None))
    import cattrs

    try:
        config = _converter().structure(values, SlurmConfig)
    except cattrs.ClassValidationError as error:
        problems += _problems(error)
    if not problems:
        return config
    order: dict[object, int] = {key: position for position, key in enumerate(options)}
    problems.sort(key=lambda problem: order.get(problem[0], len(order)))
    raise ConfigError(
        "\n".join(f"{where(key, item)}slurm config: {message}" for key, message, item in problems)
    )
