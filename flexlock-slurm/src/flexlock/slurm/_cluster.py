"""Questions asked of the Slurm cluster through its commands (scontrol, sinfo, sacct, squeue).

Every call has a timeout: a slow or dead controller must turn into an error
or an "unknown" answer, never into a hang of the submitting process.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping

import attrs

from flexlock.core import ConfigError

__all__ = [
    "FINAL_STATES",
    "RUNNING_STATES",
    "NodeLimits",
    "job_states",
    "max_array_size",
    "partition_limits",
    "require_slurm",
]

_TIMEOUT_S = 30

#: States after which a job never runs again (sacct/squeue names).
FINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "TIMEOUT",
    }
)
RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING"})


def _run(command: list[str]) -> str | None:
    """Return the stdout of `command`, or None when it fails or times out."""
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout if completed.returncode == 0 else None


def require_slurm() -> None:
    """Fail with a clear message when the Slurm commands are not installed here.

    Raises:
        ConfigError: `sbatch` is not on PATH.
    """
    if shutil.which("sbatch") is None:
        raise ConfigError(
            "--slurm_config: `sbatch` is not on PATH; run on a Slurm login node "
            "(or drop --slurm_config to run the tasks here)"
        )


def max_array_size() -> int | None:
    """Return the cluster's `MaxArraySize` (largest array index + 1), or None if unknown."""
    output = _run(["scontrol", "show", "config"])
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", output or "", re.MULTILINE)
    return int(match.group(1)) if match else None


@attrs.frozen
class NodeLimits:
    """The largest node of a partition: what a single task can ask for at most."""

    partition: str
    cpus: int
    memory_mb: int


def partition_limits(partition: str | None) -> NodeLimits | None:
    """Return the largest node of `partition` (the default one when None), None if unknown.

    Raises:
        ConfigError: `partition` does not exist (the message lists the ones that do).
    """
    output = _run(["sinfo", "--noheader", "--Node", "--format", "%P|%c|%m"])
    if output is None:
        return None
    nodes: dict[str, list[tuple[int, int]]] = {}
    default = None
    for line in output.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 3:
            continue
        name, cpus, memory = fields
        if name.endswith("*"):
            name = name[:-1]
            default = name
        try:
            nodes.setdefault(name, []).append((int(cpus), int(memory.rstrip("+"))))
        except ValueError:
            continue
    wanted = partition or default
    if wanted is None:
        return None
    if wanted not in nodes:
        raise ConfigError(
            f"slurm config: partition={wanted!r} does not exist on this cluster; "
            f"partitions: {', '.join(sorted(nodes)) or '(none)'}"
        )
    return NodeLimits(
        partition=wanted,
        cpus=max(cpus for cpus, _ in nodes[wanted]),
        memory_mb=max(memory for _, memory in nodes[wanted]),
    )


# "123_[2-5,7%2]" (pending array tasks), "123_4", "123"
_ARRAY_RANGE = re.compile(r"^(?P<job>\d+)_\[(?P<ranges>[\d,\-]+)(?:%\d+)?\]$")


def _expand(job_field: str) -> list[str]:
    match = _ARRAY_RANGE.match(job_field)
    if match is None:
        return [job_field]
    ids = []
    for part in match["ranges"].split(","):
        low, _, high = part.partition("-")
        ids += [f"{match['job']}_{index}" for index in range(int(low), int(high or low) + 1)]
    return ids


def _parse(output: str) -> dict[str, str]:
    states: dict[str, str] = {}
    for line in output.splitlines():
        job_field, _, state = line.strip().partition("|")
        if not job_field or "." in job_field:  # job steps (123.batch) are not jobs
            continue
        # "CANCELLED by 0" -> "CANCELLED"
        word = state.split()[0] if state.split() else "UNKNOWN"
        for job_id in _expand(job_field):
            states[job_id] = word
    return states


def job_states(job_ids: Iterable[str]) -> Mapping[str, str]:
    """Return {job id: Slurm state} for the given ids ("123" or array tasks "123_4").

    One command for all the ids when it can: squeue (the controller, ahead of the
    database for live jobs) is asked first; sacct only for the ids squeue no longer
    shows (it forgets finished jobs after MinJobAge) or when squeue failed, and its
    final state wins over squeue's still-live one (it lags behind for a few seconds
    the other way). Ids neither knows are missing from the result.
    """
    wanted = sorted(set(job_ids))
    if not wanted:
        return {}
    parents = sorted({job_id.split("_")[0] for job_id in wanted})
    states: dict[str, str] = {}
    squeue = _run(
        [
            "squeue",
            "--noheader",
            "--states=all",
            "--array",
            "--format=%i|%T",
            "--jobs",
            ",".join(parents),
        ]
    )
    if squeue is not None:
        states.update(_parse(squeue))
    missing = sorted({job_id.split("_")[0] for job_id in wanted if job_id not in states})
    if missing:
        sacct = _run(
            [
                "sacct",
                "--noheader",
                "--parsable2",
                "--allocations",
                "--format=JobID,State",
                "--jobs",
                ",".join(missing),
            ]
        )
        for job_id, state in _parse(sacct or "").items():
            current = states.get(job_id)
            if current is None or (state in FINAL_STATES and current not in FINAL_STATES):
                states[job_id] = state
    return {job_id: states[job_id] for job_id in wanted if job_id in states}
