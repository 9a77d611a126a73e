"""Alias bombs in config files and `-o` values are refused before expansion (issue 20).

Each run is a subprocess under a 1 GiB address-space limit and a timeout, so a
regression fails the test instead of eating the machine or hanging the suite.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_APP = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    from typing import Any
    import attrs
    from flexlock.cli import clicfg

    @attrs.define
    class Config:
        x: dict[str, Any] = attrs.field(factory=dict)
        y: list[Any] = attrs.field(factory=list)
        save_dir: str = "results/app"

    @clicfg
    def main(cfg: Config) -> None:
        print("ran")

    sys.exit(main.cli(sys.argv[1:]))
    """
)

# 100,000 aliases of one 2,000-character string: under the node cap (1,000,000),
# 200 MB once expanded (before the character cap, a 224 MB run.lock after 47 s).
_STRING = "s" * 2000
_NAMES = "abcdef"


def _file_bomb() -> str:
    lines = ["x:", f'  a: &a "{_STRING}"']
    lines += [
        f"  {name}: &{name} [{', '.join(['*' + previous] * 10)}]"
        for previous, name in itertools.pairwise(_NAMES)
    ]
    return "\n".join(lines) + "\n"


def _flow_bomb() -> str:
    items = [f'&a "{_STRING}"']
    items += [
        f"&{name} [{', '.join(['*' + previous] * 10)}]"
        for previous, name in itertools.pairwise(_NAMES)
    ]
    return "[" + ", ".join(items) + "]"


def _run(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "app.py").write_text(_APP)
    return subprocess.run(
        [sys.executable, "app.py", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_alias_bomb_under_a_dict_field_in_a_config_file_is_refused_with_its_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "c.yml").write_text(_file_bomb())

    result = _run(tmp_path, "--config", "c.yml")

    assert 2 == result.returncode, result.stderr
    assert "c.yml:6: invalid YAML in config file: aliases expand this document past" in (
        result.stderr
    )
    assert "alias bomb" in result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("field", ["x", "y"])
def test_an_alias_bomb_in_an_o_value_for_a_dict_or_list_field_is_refused(
    tmp_path: Path, field: str
) -> None:
    value = _flow_bomb()
    if field == "x":
        value = "{k: " + value + "}"

    result = _run(tmp_path, "-o", field, value)

    assert 2 == result.returncode, result.stderr
    [line] = result.stderr.splitlines()
    assert f"config key '{field}' (-o {field}): invalid YAML/JSON" in line
    assert "at column" in line
    assert "aliases expand this document past" in line
    assert len(line) < 400  # the kilobytes-long value is shortened, not echoed
    assert not (tmp_path / "results").exists()
