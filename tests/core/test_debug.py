"""@unsafe_debug: off it changes nothing; on it keeps the failed frame's variables.

Interactive behaviour is tested with a real IPython shell and real `python`
subprocesses (pdb fed through stdin or a pseudo-terminal), so no singleton,
`__main__` or environment change leaks between tests.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import select
import subprocess
import sys
import textwrap
import traceback
from collections.abc import AsyncGenerator, Generator
from pathlib import Path

import pytest

from flexlock.core import FlexLockError, _debug, debug_frames, debug_up, unsafe_debug

# --- off: nothing changes (in-process: FLEXLOCK_DEBUG is unset by conftest) -----------


def _divide(a: int, b: int) -> float:
    ratio = a / b
    return ratio  # noqa: RET504 - a local variable for the debugger to keep


def test_off_returns_what_the_function_returns() -> None:
    assert _divide(6, 3) == unsafe_debug(_divide)(6, 3)


def test_off_raises_the_same_exception_with_the_same_user_frames() -> None:
    with pytest.raises(ZeroDivisionError) as plain:
        _divide(1, 0)
    with pytest.raises(ZeroDivisionError) as decorated:
        unsafe_debug(_divide)(1, 0)

    def user_lines(info: pytest.ExceptionInfo[BaseException]) -> list[tuple[str, str | None]]:
        entries = traceback.extract_tb(info.value.__traceback__)
        return [(e.name, e.line) for e in entries if not e.filename.endswith("_debug.py")]

    assert (str(plain.value), user_lines(plain)) == (str(decorated.value), user_lines(decorated))


def test_off_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ZeroDivisionError):
        unsafe_debug(_divide)(1, 0)
    assert ("", "") == tuple(capsys.readouterr())


def test_keeps_name_doc_signature_and_wrapped() -> None:
    wrapped = unsafe_debug(_divide)
    assert (_divide.__name__, _divide.__doc__, inspect.signature(_divide), _divide) == (
        wrapped.__name__,
        wrapped.__doc__,
        inspect.signature(wrapped),
        wrapped.__wrapped__,  # type: ignore[attr-defined]
    )


def test_works_with_parentheses() -> None:
    assert 2.0 == unsafe_debug()(_divide)(6, 3)


def test_generator_stays_a_generator_that_yields_receives_and_returns() -> None:
    def echo() -> Generator[object, object, str]:
        received = yield "first"
        yield received
        return "done"

    wrapped = unsafe_debug(echo)
    generator = wrapped()
    assert inspect.isgeneratorfunction(wrapped)
    assert ["first", "sent"] == [next(generator), generator.send("sent")]
    with pytest.raises(StopIteration) as stop:
        next(generator)
    assert "done" == stop.value.value


def test_coroutine_function_stays_one_and_returns_its_value() -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    wrapped = unsafe_debug(add)
    assert (True, 5) == (inspect.iscoroutinefunction(wrapped), asyncio.run(wrapped(2, 3)))


def test_async_generator_forwards_items_and_sent_values() -> None:
    async def echo() -> AsyncGenerator[object, object]:
        received = yield "first"
        yield received

    async def drive() -> list[object]:
        generator = unsafe_debug(echo)()
        items = [await generator.__anext__(), await generator.asend("sent")]
        await generator.aclose()
        return items

    assert ["first", "sent"] == asyncio.run(drive())


def test_staticmethod_and_classmethod_can_be_decorated() -> None:
    class Maths:
        @unsafe_debug
        @staticmethod
        def double(value: int) -> int:
            return 2 * value

        @unsafe_debug
        @classmethod
        def name(cls) -> str:
            return cls.__name__

    assert (4, "Maths") == (Maths.double(2), Maths().name())


def test_importing_it_loads_nothing_beyond_flexlock_core() -> None:
    # A script imports unsafe_debug at its top: that must stay as cheap as flexlock.core,
    # so only flexlock's own small debug modules and the standard library may come with
    # it (`import flexlock.core` itself no longer loads typing or re, so they may come).
    code = (
        "import sys, flexlock.core; before = set(sys.modules); "
        "from flexlock.core import unsafe_debug; print(sorted(set(sys.modules) - before))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = ast.literal_eval(done.stdout.strip())
    own = [name for name in loaded if name.startswith("flexlock")]
    assert own == ["flexlock.core._debug", "flexlock.core._debug_frames", "flexlock.core._switches"]
    others = {name.split(".")[0].lstrip("_") for name in loaded if name not in own}
    stdlib = {name.lstrip("_") for name in sys.stdlib_module_names}
    assert others <= stdlib, f"not from the standard library: {sorted(others - stdlib)}"


def test_callable_object_keeps_its_other_attributes() -> None:
    class Command:
        """A callable with methods, like a @clicfg-decorated main."""

        def __call__(self, value: int) -> int:
            return value + 1

        def cli(self, argv: list[str]) -> int:
            return len(argv)

    wrapped = unsafe_debug(Command())
    assert (3, 2, Command.__doc__) == (wrapped(2), wrapped.cli(["a", "b"]), wrapped.__doc__)


# --- on: a real IPython shell in a subprocess ---------------------------------------

PROCESS = """
from flexlock.core import unsafe_debug


def helper(x):
    y = x * 2
    return 1 / (y - y)


@unsafe_debug
def main(n=3):
    a = 0
    b = [n] * 3
    return helper(n)


def parse(text):
    import json
    return json.loads(text)


@unsafe_debug
def load(text="{broken"):
    where = "user"
    return parse(text)


class Model:
    @unsafe_debug
    def fit(self, rate):
        steps = 10
        raise ValueError("diverged")


@unsafe_debug
def numbers(limit):
    for i in range(limit):
        yield 10 // (2 - i)


@unsafe_debug
def interrupted():
    progress = 0.5
    raise KeyboardInterrupt


@unsafe_debug
def leave():
    code = 3
    raise SystemExit(code)


@unsafe_debug
def outer_decorated():
    level = "outer"
    return inner_decorated()


@unsafe_debug
def inner_decorated():
    level = "inner"
    return 1 / 0


@unsafe_debug
async def fetch():
    url = "http://example.invalid"
    raise ConnectionError(url)
"""

SHELL_DRIVER = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
results = []
for cell in json.loads(sys.argv[1]):
    outcome = shell.run_cell(cell, silent=False)
    error = outcome.error_in_exec or outcome.error_before_exec
    results.append({
        "error": type(error).__name__ if error else None,
        "result": repr(outcome.result),
    })
print("RESULTS=" + json.dumps(results))
"""


def _env(debug: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FLEXLOCK_DEBUG", None)
    if debug is not None:
        env["FLEXLOCK_DEBUG"] = debug
    return env


def _project(tmp_path: Path) -> Path:
    (tmp_path / "process.py").write_text(PROCESS)
    return tmp_path


def _ipython(
    tmp_path: Path, cells: list[str], *, debug: str | None = "1"
) -> tuple[list[dict[str, str | None]], str]:
    """Run `cells` in a real IPython shell; return each cell's error/result and stderr."""
    project = _project(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", SHELL_DRIVER, json.dumps(cells)],
        cwd=project,
        env=_env(debug),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULTS="))
    return json.loads(line.removeprefix("RESULTS=")), done.stderr


def test_ipython_gets_the_innermost_user_frame_locals(tmp_path: Path) -> None:
    results, _ = _ipython(tmp_path, ["import process; process.main()", "(x, y)"])
    assert ("ZeroDivisionError", "(3, 6)") == (results[0]["error"], results[1]["result"])


def test_ipython_message_names_frame_and_overwritten_names(tmp_path: Path) -> None:
    _, stderr = _ipython(tmp_path, ["y = 'mine'", "import process; process.main()"])
    path = tmp_path / "process.py"
    assert (
        f"flexlock debug: ZeroDivisionError in helper ({path}:7): variables x, y are in your "
        "namespace; overwrote y;"
    ) in stderr


def test_ipython_can_call_debug_frames_without_an_import(tmp_path: Path) -> None:
    results, _ = _ipython(tmp_path, ["import process; process.main()", "debug_frames()"])
    assert results[1]["error"] is None
    assert "helper" in results[1]["result"]


def test_off_leaves_the_ipython_namespace_alone(tmp_path: Path) -> None:
    results, stderr = _ipython(
        tmp_path, ["import process; process.main()", "'y' in dir()"], debug=None
    )
    assert ("False", "") == (results[1]["result"], stderr)


def test_zero_means_off(tmp_path: Path) -> None:
    results, _ = _ipython(tmp_path, ["import process; process.main()", "'y' in dir()"], debug="0")
    assert "False" == results[1]["result"]


def test_variable_is_read_when_the_failure_happens(tmp_path: Path) -> None:
    cells = [
        "import os, process",
        "os.environ['FLEXLOCK_DEBUG'] = 'inject'",
        "process.main()",
        "y",
    ]
    results, _ = _ipython(tmp_path, cells, debug=None)
    assert "6" == results[3]["result"]


def test_library_frames_are_skipped_for_the_user_frame(tmp_path: Path) -> None:
    results, _ = _ipython(tmp_path, ["import process; process.load()", "text"])
    assert ("JSONDecodeError", "'{broken'") == (results[0]["error"], results[1]["result"])


def test_debug_up_moves_to_the_caller_and_restores_names(tmp_path: Path) -> None:
    cells = [
        "a = 'mine'",
        "import process; process.main()",
        "from flexlock.core import debug_up, debug_down, debug_frames",
        "debug_up(); (a, b, 'y' in dir())",
        "debug_down(); (a, y)",
    ]
    results, _ = _ipython(tmp_path, cells)
    assert ["(0, [3, 3, 3], False)", "('mine', 6)"] == [results[3]["result"], results[4]["result"]]


def test_debug_frames_lists_frames_and_marks_the_selected_one(tmp_path: Path) -> None:
    cells = [
        "import process; process.main()",
        "from flexlock.core import debug_frames",
        "repr(debug_frames()).splitlines()",
    ]
    path = tmp_path / "process.py"
    results, _ = _ipython(tmp_path, cells)
    assert repr([f"  0: main ({path}:14)", f"> 1: helper ({path}:7)"]) == results[2]["result"]


def test_frame_helpers_before_any_failure_say_there_is_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_debug._last, "session", None)
    with pytest.raises(FlexLockError, match="no failure captured yet"):
        debug_up()
    assert repr(debug_frames()).startswith("no failure captured")


def test_debug_up_past_the_outermost_frame_stays_there(tmp_path: Path) -> None:
    cells = [
        "import process; process.main()",
        "from flexlock.core import debug_up",
        "debug_up()",
        "debug_up().function",
    ]
    results, stderr = _ipython(tmp_path, cells)
    assert ("'main'", True) == (results[3]["result"], "already at the outermost frame" in stderr)


def test_method_failure_injects_self_and_locals(tmp_path: Path) -> None:
    cells = ["import process; process.Model().fit(0.1)", "(type(self).__name__, rate, steps)"]
    results, _ = _ipython(tmp_path, cells)
    assert "('Model', 0.1, 10)" == results[1]["result"]


def test_generator_failure_injects_the_generator_locals(tmp_path: Path) -> None:
    results, _ = _ipython(tmp_path, ["import process; list(process.numbers(5))", "(i, limit)"])
    assert "(2, 5)" == results[1]["result"]


def test_coroutine_failure_injects_its_locals(tmp_path: Path) -> None:
    cells = ["import asyncio, process; asyncio.run(process.fetch())", "url"]
    results, _ = _ipython(tmp_path, cells)
    assert "'http://example.invalid'" == results[1]["result"]


def test_keyboard_interrupt_keeps_the_variables(tmp_path: Path) -> None:
    results, _ = _ipython(tmp_path, ["import process; process.interrupted()", "progress"])
    assert "0.5" == results[1]["result"]


def test_system_exit_is_not_a_failure(tmp_path: Path) -> None:
    results, stderr = _ipython(tmp_path, ["import process; process.leave()", "'code' in dir()"])
    assert ("False", False) == (results[1]["result"], "flexlock debug" in stderr)


def test_nested_decorated_functions_report_once_and_reach_the_outer_frame(
    tmp_path: Path,
) -> None:
    cells = [
        "import process; process.outer_decorated()",
        "level",
        "from flexlock.core import debug_up; debug_up(); level",
    ]
    results, stderr = _ipython(tmp_path, cells)
    assert (["'inner'", "'outer'"], 1) == (
        [results[1]["result"], results[2]["result"]],
        stderr.count("ZeroDivisionError in"),
    )


def test_ipython_own_names_are_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "history.py").write_text(
        "from flexlock.core import unsafe_debug\n"
        "@unsafe_debug\n"
        "def run():\n"
        "    Out = 'clobbered'\n"
        "    raise RuntimeError\n"
    )
    results, stderr = _ipython(tmp_path, ["import history; history.run()", "type(Out).__name__"])
    assert ("'dict'", True) == (results[1]["result"], "kept your Out" in stderr)


def test_unknown_value_warns_and_acts_as_one(tmp_path: Path) -> None:
    results, stderr = _ipython(tmp_path, ["import process; process.main()", "y"], debug="yes!")
    assert ("6", True) == (results[1]["result"], "'yes!' is not one of" in stderr)


# --- on, outside IPython: __main__, pdb ------------------------------------------------

SCRIPT = """
import process
try:
    process.main()
except ZeroDivisionError:
    print("caught", sorted(k for k in ("x", "y") if k in globals()))
"""


def _python(
    tmp_path: Path,
    code: str,
    *,
    debug: str | None,
    stdin: str = "",
    interactive: bool = False,
) -> subprocess.CompletedProcess[str]:
    project = _project(tmp_path)
    (project / "script.py").write_text(code)
    command = [sys.executable, *(["-i"] if interactive else []), "script.py"]
    return subprocess.run(
        command,
        cwd=project,
        env=_env(debug),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_inject_without_ipython_fills_main(tmp_path: Path) -> None:
    assert "caught ['x', 'y']\n" == _python(tmp_path, SCRIPT, debug="inject").stdout


def test_auto_without_terminal_opens_no_debugger(tmp_path: Path) -> None:
    done = _python(tmp_path, SCRIPT, debug="1", stdin="p y\nq\n")
    assert ("caught []\n", True) == (done.stdout, "no debugger opened" in done.stderr)


def test_auto_under_python_i_injects_into_main(tmp_path: Path) -> None:
    done = _python(
        tmp_path,
        "import process\nprocess.main()\n",
        debug="1",
        stdin="print(y)\n",
        interactive=True,
    )
    assert "6" in done.stdout.split()


def test_pdb_opens_at_the_user_frame(tmp_path: Path) -> None:
    done = _python(tmp_path, SCRIPT, debug="pdb", stdin="p (x, y)\nq\n")
    assert "(3, 6)" in done.stdout


def test_pdb_starts_at_the_user_frame_not_the_library_one(tmp_path: Path) -> None:
    code = "import process\ntry:\n    process.load()\nexcept ValueError:\n    pass\n"
    done = _python(tmp_path, code, debug="pdb", stdin="p text\nq\n")
    assert "'{broken'" in done.stdout


def test_pdb_can_go_up_to_the_decorated_function(tmp_path: Path) -> None:
    done = _python(tmp_path, SCRIPT, debug="pdb", stdin="up\np b\nq\n")
    assert "[3, 3, 3]" in done.stdout


def test_pdb_quit_reraises_the_original_exception(tmp_path: Path) -> None:
    done = _python(tmp_path, "import process\nprocess.main()\n", debug="pdb", stdin="q\n")
    assert (1, "ZeroDivisionError: division by zero") == (
        done.returncode,
        done.stderr.strip().splitlines()[-1],
    )


def test_pdb_opens_once_for_nested_decorated_functions(tmp_path: Path) -> None:
    code = "import process\nprocess.outer_decorated()\n"
    done = _python(tmp_path, code, debug="pdb", stdin="q\nq\n")
    assert 1 == done.stderr.count("post-mortem debugger")


def test_a_failure_without_a_debugger_keeps_no_variable_alive(tmp_path: Path) -> None:
    # A worker runs on after a failed task: its variables must be freed.
    code = textwrap.dedent(
        """
        import gc, weakref
        from flexlock.core import unsafe_debug

        class Big:
            pass

        refs = []

        @unsafe_debug
        def task():
            big = Big()
            refs.append(weakref.ref(big))
            raise RuntimeError

        try:
            task()
        except RuntimeError:
            pass
        gc.collect()
        print("alive" if refs[0]() is not None else "freed")
        """
    )
    assert "freed\n" == _python(tmp_path, code, debug="1").stdout


def test_auto_with_a_terminal_opens_pdb(tmp_path: Path) -> None:
    pty = pytest.importorskip("pty", reason="pseudo-terminals are POSIX only")
    project = _project(tmp_path)
    (project / "script.py").write_text(SCRIPT)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "script.py"],
        cwd=project,
        env=_env("1"),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    os.write(controller, b"p (x, y)\nq\n")
    output = b""
    while True:  # read until the child exits and the terminal closes (EIO on Linux)
        ready, _, _ = select.select([controller], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(controller)
    assert b"(3, 6)" in output


# --- stacking with @clicfg (written by another helper) --------------------------------

CLICFG_PROCESS = textwrap.dedent(
    """
    import attrs
    from flexlock.cli._clicfg import clicfg
    from flexlock.core import unsafe_debug


    @attrs.define
    class Config:
        param: int = 1


    @unsafe_debug
    @clicfg(config_class=Config)
    def debug_outside(cfg):
        a = 0
        return cfg.param / a


    @clicfg(config_class=Config)
    @unsafe_debug
    def debug_inside(cfg):
        a = 0
        return cfg.param / a
    """
)


@pytest.mark.needs_cli
@pytest.mark.parametrize("function", ["debug_outside", "debug_inside"])
def test_stacks_with_clicfg_in_either_order(tmp_path: Path, function: str) -> None:
    pytest.importorskip("flexlock.cli._clicfg", reason="@clicfg is not written yet")
    (tmp_path / "clicfg_process.py").write_text(CLICFG_PROCESS)
    results, _ = _ipython(tmp_path, [f"import clicfg_process; clicfg_process.{function}()", "a"])
    assert "0" == results[1]["result"]


@pytest.mark.needs_cli
def test_debug_outside_clicfg_keeps_the_cli_entry_point(tmp_path: Path) -> None:
    pytest.importorskip("flexlock.cli._clicfg", reason="@clicfg is not written yet")
    (tmp_path / "clicfg_process.py").write_text(CLICFG_PROCESS)
    cells = ["import clicfg_process", "clicfg_process.debug_outside.cli(['-o', 'param', '3'])"]
    results, _ = _ipython(tmp_path, cells, debug=None)
    assert "1" == results[1]["result"]  # exit code 1: the run failed, reported by @clicfg
