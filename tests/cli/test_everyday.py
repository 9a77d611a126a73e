"""What a Hydra user types in the first week: positional overrides, typos, pipes, sweeps."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest

from flexlock.cli import clicfg
from flexlock.cli._interpolation import interpolate
from flexlock.core import ConfigError

SEEN: list[tuple[int, str]] = []


@attrs.define
class Model:
    lr: float = 0.1


@attrs.define
class Config:
    param: int = 1
    name: str = "a"
    model: Model = attrs.Factory(Model)


@clicfg
def process(cfg: Config) -> None:
    SEEN.append((cfg.param, cfg.name))


@pytest.fixture(autouse=True)
def _forget() -> None:
    SEEN.clear()


def test_positional_key_value_is_an_override() -> None:
    assert 0 == process.cli(["param=10", "model.lr=0.5", "name=x=y"])
    assert [(10, "x=y")] == SEEN


def test_positional_overrides_and_o_apply_in_command_line_order() -> None:
    assert 0 == process.cli(["param=2", "-o", "param", "3", "name=b"])
    assert [(3, "b")] == SEEN


def test_value_of_a_flag_is_not_taken_as_an_override(workdir: Path) -> None:
    assert 0 == process.cli(["--sweep", "param=1,2"])
    assert [1, 2] == sorted(param for param, _ in SEEN)


def test_positional_unknown_key_names_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == process.cli(["parm=3"])
    assert "did you mean 'param'" in capsys.readouterr().err


def test_misspelt_flag_suggests_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == process.cli(["--print_confg"])
    err = capsys.readouterr().err
    assert "unrecognized argument --print_confg; did you mean --print_config" in err


def test_field_given_as_a_flag_gives_the_override_spelling(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert 2 == process.cli(["--param", "3"])
    assert "param=VALUE or -o param VALUE" in capsys.readouterr().err


def test_stray_word_says_how_to_set_a_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == process.cli(["train"])
    assert "set a config field with KEY=VALUE or -o KEY VALUE" in capsys.readouterr().err


def test_key_swept_twice_says_so(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == process.cli(["--sweep", "param=1,2", "--sweep", "param=3"])
    err = capsys.readouterr().err
    assert "--sweep param is given twice" in err
    assert "same task" not in err
    assert [] == SEEN


def test_misspelt_interpolation_key_suggests_the_key() -> None:
    with pytest.raises(ConfigError, match=r"did you mean \$\{model\.lr\}\?"):
        interpolate({"model": {"lr": 0.1}, "x": "${model.lrr}"})


def test_print_config_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import attrs
            from flexlock.cli import clicfg

            @attrs.define
            class Config:
                param: int = 1

            @clicfg
            def main(cfg: Config) -> None:
                pass

            if __name__ == "__main__":
                main(Config())
            """
        )
    )
    child = subprocess.Popen(
        [sys.executable, str(script), "--print_config"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stderr is not None
    child.stdout.close()  # the reader is gone (`| head` done) before the script prints
    err = child.stderr.read()
    child.wait(timeout=60)
    assert "BrokenPipeError" not in err
    assert "Traceback" not in err
    assert 0 == child.returncode


SCRIPT = """
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 1
    save_dir: str = "results/process"

@clicfg
def main(cfg: Config) -> None:
    print(f"task {cfg.param} says hello")

if __name__ == "__main__":
    main(Config())
"""


@pytest.fixture
def repo_script(tmp_path: Path) -> Path:
    """A committed script in its own git repo, whose results/ is not git-ignored."""
    from tests._helpers import git

    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    git(tmp_path, "add", "script.py")
    git(tmp_path, "commit", "-q", "-m", "script")
    return script


def run_script(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_not_ignored_run_directories_are_named_once_per_invocation(repo_script: Path) -> None:
    result = run_script(repo_script, "--sweep", "param=1,2,3,4")
    assert 0 == result.returncode, result.stderr
    lines = result.stderr.splitlines()
    warnings = [line for line in lines if "not ignored" in line or "not git-ignored" in line]
    assert 1 == len(warnings), result.stderr
    assert "add results/ to .gitignore" in warnings[0]
    assert len(warnings[0]) < 140


FAILING = """
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 1

def helper(value: int) -> None:
    raise ValueError(f"bad value {value}")

@clicfg
def main(cfg: Config) -> None:
    helper(cfg.param)

if __name__ == "__main__":
    main(Config())
"""


def test_traceback_of_a_failing_main_shows_only_the_users_frames(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(FAILING)
    result = run_script(script)
    frames = [line for line in result.stderr.splitlines() if line.lstrip().startswith("File ")]
    assert 1 == result.returncode
    assert frames, result.stderr
    assert all("script.py" in line for line in frames), result.stderr
    assert "ValueError: bad value 1" in result.stderr
    assert "flexlock frames hidden; FLEXLOCK_TRACEBACK=1 shows them" in result.stderr


def test_flexlock_traceback_shows_flexlocks_frames_too(tmp_path: Path) -> None:
    import os

    script = tmp_path / "script.py"
    script.write_text(FAILING)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "FLEXLOCK_TRACEBACK": "1"},
    )
    assert "_runner.py" in result.stderr
    assert "script.py" in result.stderr


DATED = """
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 1
    save_dir: str = "results/${now:%Y%m%d-%H%M%S}"

@clicfg
def main(cfg: Config) -> None:
    print(f"task {cfg.param} in {cfg.save_dir}")

if __name__ == "__main__":
    main(Config())
"""


def test_now_puts_a_task_list_in_one_dated_folder_and_resume_finds_it(
    repo_script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests._helpers import git

    monkeypatch.delenv("FLEXLOCK_NOW", raising=False)
    repo_script.write_text(DATED)
    (repo_script.parent / ".gitignore").write_text("results/\n")
    git(repo_script.parent, "add", ".")
    git(repo_script.parent, "commit", "-q", "-m", "dated")
    first = run_script(repo_script, "--sweep", "param=1,2", "--n_jobs", "2")
    assert 0 == first.returncode, first.stderr
    dated = sorted((repo_script.parent / "results").iterdir())
    assert 1 == len(dated), dated
    assert ["param=1", "param=2"] == sorted(p.name for p in dated[0].iterdir() if p.is_dir())
    # The notice gives the time to resume with; the same time finds the same folder.
    line = next(x for x in first.stderr.splitlines() if "run again with FLEXLOCK_NOW=" in x)
    moment = line.rpartition("FLEXLOCK_NOW=")[2]
    again = subprocess.run(
        [sys.executable, str(repo_script), "--sweep", "param=1,2"],
        cwd=repo_script.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**__import__("os").environ, "FLEXLOCK_NOW": moment},
    )
    assert 0 == again.returncode, again.stderr
    assert "2 skipped" in again.stderr, again.stderr
    assert dated == sorted((repo_script.parent / "results").iterdir())


@attrs.define
class Dated:
    stamp: str = "${now:%H%M%S.%f}"
    again: str = "${now:%H%M%S.%f}"


def test_now_is_one_time_per_call_from_python(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from flexlock.cli._resolvers import now

    monkeypatch.delenv("FLEXLOCK_NOW", raising=False)

    stamps: list[tuple[str, str]] = []

    @clicfg(config_class=Dated)
    def record(cfg: Dated) -> None:
        stamps.append((cfg.stamp, cfg.again))

    assert 0 == record.cli([])
    time.sleep(1.1)
    record()
    assert stamps[0][0] == stamps[0][1]
    assert stamps[1][0] == stamps[1][1]
    assert stamps[0][0] != stamps[1][0]
    assert "FLEXLOCK_NOW" not in __import__("os").environ
    monkeypatch.setenv("FLEXLOCK_NOW", "2026-12-02T13:40:05+01:00")
    assert "2026-12-02_13-40-05" == now()


def test_bad_flexlock_now_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from flexlock.cli._resolvers import now

    monkeypatch.setenv("FLEXLOCK_NOW", "yesterday")
    with pytest.raises(ConfigError, match="FLEXLOCK_NOW='yesterday': expected an ISO 8601"):
        now()


def test_rerun_into_a_fixed_save_dir_says_the_old_sheet_is_kept(repo_script: Path) -> None:
    first = run_script(repo_script)
    assert 0 == first.returncode, first.stderr
    assert "replaces it" not in first.stderr
    second = run_script(repo_script)
    assert 0 == second.returncode, second.stderr
    history = Path("results/process/.flexlock/history")
    assert "results/process holds a succeeded run of" in second.stderr
    assert f"its sheet is kept in {history}/" in second.stderr
    kept = list((repo_script.parent / history).iterdir())
    assert 1 == len(kept)


def test_rerun_over_an_unreadable_sheet_says_so_in_plain_words(repo_script: Path) -> None:
    # Found by benchmarks/trial_hostile.py: "holds a invalid run of ; this run replaces it".
    assert 0 == run_script(repo_script).returncode
    (repo_script.parent / "results/process/run.lock").write_text("not: [a sheet\n")
    again = run_script(repo_script)
    assert 0 == again.returncode, again.stderr
    assert "results/process holds an unreadable run sheet; this run replaces it" in again.stderr


LOGGED = """
import os, subprocess, sys
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 1
    save_dir: str = "results/process"

@clicfg
def main(cfg: Config) -> None:
    print(f"python says {cfg.param}")
    sys.stdout.flush()
    os.write(1, b"descriptor says hi\\n")
    subprocess.run(["echo", "child says hi"], check=True)
    print("warning on stderr", file=sys.stderr)
    if cfg.param == 3:
        raise ValueError("three is bad")

if __name__ == "__main__":
    main(Config())
"""


def test_single_run_writes_its_log_and_still_shows_it(repo_script: Path) -> None:
    repo_script.write_text(LOGGED)
    result = run_script(repo_script)
    assert 0 == result.returncode, result.stderr
    logs = repo_script.parent / "results/process"
    for shown in ("python says 1", "descriptor says hi", "child says hi"):
        assert shown in result.stdout
        assert shown in (logs / "stdout.log").read_text()
    assert "warning on stderr" in result.stderr
    assert "warning on stderr" in (logs / "stderr.log").read_text()


def test_failed_single_run_keeps_its_traceback_in_the_log_once(repo_script: Path) -> None:
    repo_script.write_text(LOGGED)
    result = run_script(repo_script, "param=3")
    assert 1 == result.returncode
    assert 1 == result.stderr.count("ValueError: three is bad"), result.stderr
    log = (repo_script.parent / "results/process/stderr.log").read_text()
    assert "ValueError: three is bad" in log


def test_serial_task_list_shows_task_output_with_tee(repo_script: Path) -> None:
    repo_script.write_text(LOGGED)
    quiet = run_script(repo_script, "--sweep", "param=1,2")
    assert "python says" not in quiet.stdout
    teed = run_script(repo_script, "--sweep", "param=1,2", "--force", "--tee")
    assert 0 == teed.returncode, teed.stderr
    for param in (1, 2):
        assert f"python says {param}" in teed.stdout
        log = repo_script.parent / f"results/process/param={param}/stdout.log"
        assert f"python says {param}" in log.read_text()


def test_tee_without_a_task_list_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == process.cli(["--tee"])
    assert "--tee applies to task lists" in capsys.readouterr().err


TTY = """
import sys
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    save_dir: str = "results/process"

@clicfg
def main(cfg: Config) -> None:
    print(f"isatty={sys.stdout.isatty()}")

if __name__ == "__main__":
    main(Config())
"""


def test_logged_run_still_sees_its_terminal(repo_script: Path) -> None:
    import os
    import pty

    repo_script.write_text(TTY)
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, str(repo_script)],
            cwd=repo_script.parent,
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
        os.close(follower)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the terminal is drained
            while chunk := os.read(leader, 4096):
                shown += chunk
    finally:
        os.close(leader)
    assert 0 == done.returncode, done.stderr
    assert b"isatty=True" in shown
    assert "isatty=True" in (repo_script.parent / "results/process/stdout.log").read_text()
