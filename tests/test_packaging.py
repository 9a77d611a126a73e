"""All distributions share one version and siblings pin each other exactly."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests._helpers import REPO_ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

PARTS = ("core", "cli", "mlflow", "slurm")


def _project(path: Path) -> dict:
    return tomllib.loads(path.read_text())["project"]


def _shared_version() -> str:
    text = (REPO_ROOT / "flexlock-core/src/flexlock/core/_version.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    assert match
    return match.group(1)


def test_every_distribution_has_the_shared_version() -> None:
    version = _shared_version()
    versions = {"flexlock": _project(REPO_ROOT / "pyproject.toml")["version"]}
    versions |= {
        f"flexlock-{p}": _project(REPO_ROOT / f"flexlock-{p}/pyproject.toml")["version"]
        for p in PARTS
    }
    assert dict.fromkeys(versions, version) == versions


@pytest.mark.parametrize("part", PARTS)
def test_sibling_pins_are_exact_and_current(part: str) -> None:
    version = _shared_version()
    deps = _project(REPO_ROOT / f"flexlock-{part}/pyproject.toml")["dependencies"]
    siblings = [d for d in deps if d.startswith("flexlock")]
    assert all(re.fullmatch(r"flexlock-[a-z]+==" + re.escape(version), d) for d in siblings), (
        siblings
    )


def test_meta_extras_point_at_the_sibling_folders() -> None:
    project = _project(REPO_ROOT / "pyproject.toml")
    extras = project["optional-dependencies"]
    assert {"cli", "mlflow", "slurm", "all"} <= set(extras)
    for requirement in [*project["dependencies"], *(r for reqs in extras.values() for r in reqs)]:
        name, _, target = requirement.partition(" @ {root:uri}/")
        assert target == name, requirement
        assert (REPO_ROOT / target / "pyproject.toml").is_file()


def test_namespace_has_no_init_anywhere() -> None:
    assert [] == list(REPO_ROOT.glob("flexlock-*/src/flexlock/__init__.py"))


@pytest.mark.parametrize("part", PARTS)
def test_every_distribution_ships_py_typed_and_readme(part: str) -> None:
    assert (REPO_ROOT / f"flexlock-{part}/src/flexlock/{part}/py.typed").is_file()
    assert (REPO_ROOT / f"flexlock-{part}/README.md").is_file()


def test_core_depends_only_on_attrs_cattrs_pyyaml() -> None:
    deps = _project(REPO_ROOT / "flexlock-core/pyproject.toml")["dependencies"]
    assert ["attrs", "cattrs", "pyyaml"] == [re.split(r"[<>=!~ \[]", d)[0] for d in deps]


def test_cli_runs_git_through_core_not_gitpython() -> None:
    # push/pull use flexlock.core.run_git (one environment policy): see cli/_remote.py.
    deps = _project(REPO_ROOT / "flexlock-cli/pyproject.toml")["dependencies"]
    assert [] == [d for d in deps if d.lower().startswith("gitpython")]
