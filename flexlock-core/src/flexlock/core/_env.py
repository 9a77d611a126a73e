"""Capture where and how a run ran, without ever recording the process environment.

Only named facts are kept: interpreter, platform, host, user, cwd, the
(redacted) command line, versions of installed distributions and the job ids
of batch schedulers. Environment variables other than the scheduler ids in
`SCHEDULER_VARIABLES` are never read into the sheet.
"""

from __future__ import annotations

import functools
import getpass
import os
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from flexlock.core._model import EnvRecord
from flexlock.core._redact import Redactor

__all__ = ["SCHEDULER_VARIABLES", "capture_env", "installed_packages"]

#: Environment variables recorded under `env.scheduler` (batch job and array ids).
SCHEDULER_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NAME",
    "SLURM_CLUSTER_NAME",
    "SLURM_JOB_NODELIST",
    "SLURM_PROCID",
    "SLURM_RESTART_COUNT",
    "PBS_JOBID",
    "PBS_ARRAYID",
    "PBS_ARRAY_INDEX",
    "LSB_JOBID",
    "LSB_JOBINDEX",
    "SGE_TASK_ID",
    "JOB_ID",
)

_DIST_INFO = re.compile(r"(?P<name>[^-]+)-(?P<version>[^-]+?)(-py[0-9.]+)?\.(dist|egg)-info")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def installed_packages() -> dict[str, str]:
    """Return {distribution: version} for every distribution on `sys.path`, computed once.

    The versions are read from the `<name>-<version>.dist-info` directory names
    (PEP 376/427 naming) with one `scandir` per `sys.path` entry, instead of
    parsing every METADATA file as `importlib.metadata` does; only entries whose
    name carries no version (old egg-info) fall back to reading metadata.
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = [item.name for item in os.scandir(entry or ".")]
        except OSError:
            continue
        for name in names:
            if not name.endswith(("dist-info", "egg-info")):
                continue
            match = _DIST_INFO.fullmatch(name)
            if match:
                # First on sys.path wins, as for imports.
                found.setdefault(_normalise(match["name"]), match["version"])
            elif name.endswith(".egg-info"):
                _from_metadata(Path(entry or ".") / name, found)
    return dict(sorted(found.items()))


def _from_metadata(path: Path, found: dict[str, str]) -> None:
    from importlib.metadata import PathDistribution

    distribution = PathDistribution(path)
    name, version = distribution.metadata["Name"], distribution.version
    if name and version:
        found.setdefault(_normalise(name), version)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # containers without a passwd entry for the uid
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _platform() -> str:
    # platform.platform() may read the interpreter binary (libc_ver); uname is enough.
    if hasattr(os, "uname"):
        uname = os.uname()
        return f"{uname.sysname}-{uname.release}-{uname.machine}"
    import platform

    return platform.platform(terse=True)


def capture_env(
    argv: Sequence[str] | None = None,
    *,
    redactor: Redactor | None = None,
    packages: bool = True,
) -> EnvRecord:
    """Describe the current process: interpreter, host, user, cwd, argv, packages, scheduler ids."""
    redactor = redactor or Redactor()
    return EnvRecord(
        python=sys.version.split()[0],
        implementation=sys.implementation.name,
        platform=_platform(),
        hostname=socket.gethostname(),
        user=_user(),
        cwd=str(Path.cwd()),
        argv=tuple(redactor.argv(list(sys.argv if argv is None else argv))),
        packages=installed_packages() if packages else {},
        scheduler={name: os.environ[name] for name in SCHEDULER_VARIABLES if name in os.environ},
    )
