"""All distributions share one version, pin each other exactly and declare what they import."""

from __future__ import annotations

import ast
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


def test_meta_requirements_are_plain_pins_of_the_siblings() -> None:
    # A direct reference (`flexlock-core @ file://...`) ends up in the built wheel's
    # metadata, which then installs nowhere but the machine that built it.
    version = _shared_version()
    project = _project(REPO_ROOT / "pyproject.toml")
    extras = project["optional-dependencies"]
    assert [f"flexlock-core=={version}"] == project["dependencies"]
    assert {
        "cli": [f"flexlock-cli=={version}"],
        "mlflow": [f"flexlock-mlflow=={version}"],
        "slurm": [f"flexlock-slurm=={version}"],
        "all": [f"flexlock-{p}=={version}" for p in ("cli", "mlflow", "slurm")],
    } == extras


def test_the_version_supersedes_the_unrelated_flexlock_on_pypi() -> None:
    # PyPI has another project's `flexlock` 0.10.0; ours must sort after it.
    assert tuple(int(n) for n in _shared_version().split(".")[:2]) > (0, 10)


# Imported but deliberately not required: each is imported inside a function that
# says how to install it when missing (or only when already imported).
_OPTIONAL_IMPORTS = {
    "core": {"blake3", "cloudpickle", "tomli"},
    "cli": {"IPython"},
    "mlflow": set(),
    "slurm": set(),
}
_DISTRIBUTION_OF = {"yaml": "pyyaml", "mlflow": "mlflow-skinny"}


def _third_party_imports(part: str) -> set[str]:
    names: set[str] = set()
    for path in (REPO_ROOT / f"flexlock-{part}/src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.partition(".")[0])
    # tomllib is the standard library's from 3.11 on (imported behind a version check)
    stdlib = set(sys.stdlib_module_names) | {"tomllib"}
    return {n for n in names if n not in stdlib and n != "flexlock"}


@pytest.mark.parametrize("part", PARTS)
def test_every_imported_third_party_package_is_declared(part: str) -> None:
    project = _project(REPO_ROOT / f"flexlock-{part}/pyproject.toml")
    declared = {re.split(r"[<>=!~ ;\[]", d)[0].lower() for d in project["dependencies"]}
    required = _third_party_imports(part) - _OPTIONAL_IMPORTS[part]
    assert set() == {_DISTRIBUTION_OF.get(n, n).lower() for n in required} - declared


def test_optional_blake3_is_an_extra_of_core() -> None:
    extras = _project(REPO_ROOT / "flexlock-core/pyproject.toml")["optional-dependencies"]
    assert ["blake3"] == [re.split(r"[<>=]", d)[0] for d in extras["blake3"]]


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
