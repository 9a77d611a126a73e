"""Test matrix: Python 3.10-3.13 x install sets (core, cli, all) from built wheels; lint; types.

Interpreters come from pyenv (never downloaded). One cell:
`nox -s "tests-3.11(install_set='all')"`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nox

# Interpreters come from pyenv's installed versions (never downloaded): put their
# bin directories on PATH so nox finds python3.10 ... python3.13 by name.
_PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())


# Newest last, so it ends up first on PATH and plain `python3` is the newest one.
for _bin in sorted(_PYENV_VERSIONS.glob("3.*/bin"), key=_version_key):
    os.environ["PATH"] = f"{_bin}{os.pathsep}{os.environ['PATH']}"

ROOT = Path(__file__).parent
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
DISTRIBUTIONS = {
    "core": ["flexlock-core"],
    "cli": ["flexlock-core", "flexlock-cli"],
    "all": ["flexlock-core", "flexlock-cli", "flexlock-mlflow", "flexlock-slurm"],
}


def _build_wheels(session: nox.Session, names: list[str]) -> list[str]:
    out = Path(session.create_tmp()) / "wheels"
    session.install("build")
    for name in names:
        session.run(
            "python", "-m", "build", "--wheel", "--outdir", str(out), str(ROOT / name), silent=True
        )
    return [str(next(out.glob(f"{name.replace('-', '_')}-*.whl"))) for name in names]


@nox.session(python=PYTHONS)
@nox.parametrize("install_set", list(DISTRIBUTIONS))
def tests(session: nox.Session, install_set: str) -> None:
    """Run the suite against wheels of one install set."""
    wheels = _build_wheels(session, DISTRIBUTIONS[install_set])
    session.install(*wheels)
    if install_set == "all":
        session.install("-r", str(ROOT / "requirements-test.txt"))
    else:
        session.install(
            "pytest>=8",
            "pytest-timeout>=2.3",
            "hypothesis>=6.100",
            "ipython>=8.12",
            "cloudpickle>=3.0",
            "blake3>=0.4",  # core's optional hash: its tests run in every cell
            "tomli; python_version < '3.11'",
        )
    # Import flexlock from the wheels, never from src/; temp dirs outside the checkout,
    # since tests need directories that are not inside any git repository.
    scratch = tempfile.mkdtemp(prefix="flexlock-nox-")
    session.run(
        "python",
        "-m",
        "pytest",
        *session.posargs,
        env={"FLEXLOCK_INSTALL_SET": install_set, "TMPDIR": scratch},
    )


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check + ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every distribution."""
    session.install(
        "mypy",
        "types-PyYAML",
        "-e",
        "./flexlock-core",
        "-e",
        "./flexlock-cli",
        "-e",
        "./flexlock-mlflow",
        "-e",
        "./flexlock-slurm",
    )
    session.run(
        "mypy", "flexlock-core/src", "flexlock-cli/src", "flexlock-mlflow/src", "flexlock-slurm/src"
    )


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Run every benchmark; results go to benchmarks/results/."""
    session.install(
        "-e",
        "./flexlock-core",
        "-e",
        "./flexlock-cli",
        "-e",
        "./flexlock-mlflow",
        "-e",
        "./flexlock-slurm",
        "-r",
        str(ROOT / "requirements-test.txt"),
    )
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        session.run("python", str(script), *session.posargs)


@nox.session(python=False)
def dists(session: nox.Session) -> None:
    """Build and check all five distributions, then install each set as a user would.

    scripts/ci-install-check.sh: fresh venvs from dist/ only (core alone on 3.10, cli
    alone, flexlock[all] running the demo); `.ci/run` calls the same script.
    """
    session.run("bash", str(ROOT / "scripts/ci-install-check.sh"), external=True)
