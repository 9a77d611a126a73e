"""Hostile task files and values: clear one-line errors, nothing silently accepted (issue 20)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cli.test_tasks import RAN, _forget, params, process  # noqa: F401 - the autouse fixture

pytestmark = pytest.mark.usefixtures("_forget", "workdir")


def test_a_key_set_twice_on_one_task_line_is_an_error(
    write: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    write("tasks.txt", "param=1\nparam=1 param=2\n")

    assert 2 == process.cli(["--tasks", "tasks.txt"])

    err = capsys.readouterr().err
    assert "tasks.txt:2: 'param' is set twice on this line" in err
    assert [] == RAN


def test_a_utf8_bom_at_the_start_of_a_task_file_is_not_part_of_the_first_value(
    write: Any,
) -> None:
    write("tasks.txt", "\ufeff1\n2\n")

    assert 0 == process.cli(["--tasks", "tasks.txt", "--task_to", "param"])

    assert [1, 2] == params()


def test_a_yaml_task_file_that_is_not_a_list_names_no_internal_class(
    write: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    write("tasks.yml", "param: 1\n")

    assert 2 == process.cli(["--tasks", "tasks.yml"])

    err = capsys.readouterr().err
    assert "got a mapping" in err
    assert "LineDict" not in err


def test_a_config_file_that_is_a_list_names_no_internal_class(
    write: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    write("c.yml", "- 1\n- 2\n")

    assert 2 == process.cli(["--config", "c.yml"])

    err = capsys.readouterr().err
    assert "c.yml: a config file must be a mapping of keys, got a list" in err
    assert "LineList" not in err
