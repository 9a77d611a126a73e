"""docs/cli-reference.md documents exactly the installed `flexlock` subcommands and their options.

The page is generated (scripts/gen_cli_reference.py); argparse's layout differs
between Python versions, so this compares structure: the commands, and every
option string of each command.
"""

from __future__ import annotations

import argparse
import importlib.util
import re

import pytest

from tests._helpers import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "cli-reference.md"


def _commands() -> dict[str, argparse.ArgumentParser]:
    from flexlock.cli._main import build_parser

    subparsers = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    return dict(subparsers.choices)


def _sections() -> dict[str, str]:
    text = PAGE.read_text(encoding="utf-8")
    parts = re.split(r"^## flexlock (\S+)\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.fixture(autouse=True)
def _all_installed() -> None:
    if not all(importlib.util.find_spec(f"flexlock.{p}") for p in ("mlflow", "slurm")):
        pytest.skip(
            "the reference lists every distribution's subcommands: needs the all install set"
        )


def test_reference_has_a_section_per_installed_command() -> None:
    assert sorted(_commands()) == sorted(_sections())


def test_reference_lists_every_option_of_every_command() -> None:
    sections = _sections()
    missing = {
        name: [
            opt
            for action in parser._actions
            for opt in action.option_strings
            if opt not in sections[name]
        ]
        for name, parser in _commands().items()
    }
    assert {} == {name: opts for name, opts in missing.items() if opts}, (
        "run scripts/gen_cli_reference.py"
    )
