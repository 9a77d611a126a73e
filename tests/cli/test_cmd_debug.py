"""`flexlock debug RUN_DIR`: what a failed task saved, and how to load it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flexlock.cli._main import main
from flexlock.core import save_failure_locals


def _fail_and_save(run_dir: Path) -> Path:
    def train(rate: float) -> None:
        losses = [0.5, 0.25]
        label = "x" * 200
        _ = (losses, label)
        raise FloatingPointError(f"loss diverged at rate {rate}")

    try:
        train(0.1)
    except FloatingPointError as error:
        save_failure_locals(error, run_dir)
    return run_dir


def test_prints_the_failure_frame_and_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _fail_and_save(tmp_path / "run")
    assert 0 == main(["debug", str(run)])
    out = capsys.readouterr().out
    assert [
        "failed:    FloatingPointError: loss diverged at rate 0.1",
        "  rate    float  0.1",
        "  losses  list   [0.5, 0.25]",
    ] == [line for line in out.splitlines() if line.startswith(("failed:", "  rate", "  losses"))]


def test_names_the_frame_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["debug", str(_fail_and_save(tmp_path / "run"))])
    source = Path(__file__).read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if "raise FloatingPointError" in text)
    assert f"frame:     train ({__file__}:{line})" in capsys.readouterr().out.splitlines()


def test_long_reprs_are_shortened_to_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["debug", str(_fail_and_save(tmp_path / "run"))])
    label_line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("  label"))
    assert label_line.endswith("xxx...")


def test_says_how_to_load_the_variables_in_ipython(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _fail_and_save(tmp_path / "run")
    main(["debug", str(run)])
    assert f"  load_debug_locals({str(run)!r})" in capsys.readouterr().out.splitlines()


def test_traceback_flag_prints_the_saved_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["debug", str(_fail_and_save(tmp_path / "run")), "--traceback"])
    assert "Traceback (most recent call last):" in capsys.readouterr().out


def test_run_without_saved_locals_exits_2_with_the_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run").mkdir()
    assert 2 == main(["debug", str(tmp_path / "run")])
    assert "no saved failure locals" in capsys.readouterr().err


def test_shell_opens_with_the_variables_loaded(tmp_path: Path) -> None:
    run = _fail_and_save(tmp_path / "run")
    done = subprocess.run(
        [sys.executable, "-m", "flexlock.cli._main", "debug", str(run), "--shell"],
        input="print(sum(losses))\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "0.75" in done.stdout


def test_a_failed_task_of_a_task_list_can_be_inspected(tmp_path: Path) -> None:
    # End to end with the real task runner: FLEXLOCK_DEBUG=1 makes it save the locals.
    script = tmp_path / "process.py"
    script.write_text(
        textwrap.dedent(
            """
            import attrs
            from flexlock.cli import clicfg


            @attrs.define
            class Config:
                param: int = 1
                save_dir: str = "results/process"


            @clicfg(config_class=Config)
            def main(cfg):
                divisor = cfg.param - 2
                return 1 / divisor


            if __name__ == "__main__":
                main()
            """
        )
    )
    env = {**os.environ, "FLEXLOCK_DEBUG": "1"}
    subprocess.run(
        [sys.executable, "process.py", "--sweep", "param=1,2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    done = subprocess.run(
        [sys.executable, "-m", "flexlock.cli._main", "debug", "results/process/param=2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "  divisor  int     0" in done.stdout.splitlines()
