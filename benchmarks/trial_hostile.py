"""Hostile-input and kill trials for issue 20 ("Tests and measurements").

Every trial is a real subprocess (a small `@clicfg` script or the `flexlock`
command) with a timeout:

1. Bad inputs (bad YAML, alias bombs under RLIMIT_AS 1 GiB, deep nesting, python
   tags, duplicate task keys, BOMs, bad `-o`, wrong types, missing/unreadable
   files, bad `--tasks`/`--sweep`/`--experiment`, hostile run.lock headers for
   `ls`/`show`/`verify`/`diff`, huge sheets). Each is classified: one-line error
   (one non-empty stderr line or one `error:` line, exit code per DESIGN.md),
   traceback, hang (timeout), silent acceptance (exit 0 where an error is due),
   or other (wrong exit code / several lines).
2. Kill trials: runs killed with kill -9 or SIGTERM at random moments; sheets left
   `running` by a process that lived to finalise them (goal 0); kill -9'd runs
   whose sheet the next run keeps as `interrupted`; `--n_jobs 2` task lists whose
   parent is killed, counting loky workers still alive after 15 s (goal 0).

    .venv/bin/python benchmarks/trial_hostile.py           # writes results/hostile.md
    .venv/bin/python benchmarks/trial_hostile.py --kills 10
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

RESULTS = Path(__file__).parent / "results" / "hostile.md"
FLEXLOCK = str(Path(sys.executable).with_name("flexlock"))
TIMEOUT = 20.0

SCRIPT = """
import time
import attrs
from flexlock.cli import clicfg

@attrs.define
class Model:
    lr: float = 0.1

@attrs.define
class Config:
    param: int = 1
    name: str = "x"
    ratio: float = 0.5
    opts: dict = attrs.Factory(dict)
    items: list = attrs.Factory(list)
    model: Model = attrs.Factory(Model)
    sleep: float = 0.0
    save_dir: str = "results/process"

@clicfg
def main(cfg: Config) -> None:
    time.sleep(cfg.sleep)

if __name__ == "__main__":
    main(Config())
"""

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
    f" *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)
)
BOMB_ONE_LINE = (
    "[&a [x,x,x,x,x,x,x,x], &b [*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b],"
    + (
        " &d [*c,*c,*c,*c,*c,*c,*c,*c], &e [*d,*d,*d,*d,*d,*d,*d,*d], &f [*e,*e,*e,*e,*e,*e,*e,*e],"
        " &g [*f,*f,*f,*f,*f,*f,*f,*f], &h [*g,*g,*g,*g,*g,*g,*g,*g], &i [*h,*h,*h,*h,*h,*h,*h,*h]]"
    )
)


@dataclass
class Case:
    name: str
    argv: list[str]
    codes: tuple[int, ...] = (2,)  # the exit codes DESIGN.md §8 allows for this error
    setup: Callable[[Path], None] | None = None
    expect_invalid: bool = False  # `ls`: the sheet must be listed `invalid`, not shown
    limit_memory: bool = False
    expect_ok: bool = False  # documented as accepted (a control, not a bad input)


@dataclass
class Outcome:
    case: Case
    verdict: str
    code: int | None
    seconds: float
    line: str


def _write(name: str, text: str | bytes) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)

    return setup


def _sheet(name: str, edit: Callable[[str], str]) -> Callable[[Path], None]:
    """A real sheet (from a succeeded run) at results/<name>/run.lock, then edited."""

    def setup(root: Path) -> None:
        target = root / "results" / name
        target.mkdir(parents=True, exist_ok=True)
        good = root / "results" / "good" / "run.lock"
        (target / "run.lock").write_text(edit(good.read_text()))

    return setup


def _replace_header(key: str, value: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = text.splitlines(keepends=True)
        for index, line in enumerate(lines):
            if line.startswith(f"{key}:"):
                lines[index] = f"{key}: {value}\n"
                break
        return "".join(lines)

    return edit


def _unreadable(name: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / name
        path.write_text("param: 2\n")
        path.chmod(0)

    setup.unreadable = True  # type: ignore[attr-defined]
    return setup


def _cases() -> list[Case]:
    py = [sys.executable, "script.py"]
    return [
        # config files
        Case(
            "yaml: unclosed bracket",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", "param: [1, 2\n"),
        ),
        Case(
            "yaml: bad indentation",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", "a:\n  b: 1\n c: 2\n"),
        ),
        Case(
            "yaml: tab indentation",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", "model:\n\tlr: 1\n"),
        ),
        Case(
            "yaml: not a mapping", [*py, "--config", "c.yml"], setup=_write("c.yml", "- 1\n- 2\n")
        ),
        Case(
            "yaml: alias bomb under dict field",
            [*py, "--config", "c.yml"],
            setup=_write(
                "c.yml", "opts:\n" + "".join("  " + line + "\n" for line in BOMB.splitlines())
            ),
            limit_memory=True,
        ),
        Case(
            "yaml: alias bomb at top level",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", BOMB),
            limit_memory=True,
        ),
        Case(
            "yaml: simple anchor/alias (docs/cli.md: allowed)",
            [*py, "--config", "c.yml"],
            expect_ok=True,
            setup=_write("c.yml", "name: &n a\nopts: {k: *n}\n"),
        ),
        Case(
            "yaml: deep nesting 10000",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", "items: " + "[" * 10000 + "]" * 10000 + "\n"),
        ),
        Case(
            "yaml: !!python/name tag",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", "name: !!python/name:os.system\n"),
        ),
        Case(
            "yaml: !!python/object tag",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", "opts: !!python/object/apply:os.system [echo hi]\n"),
        ),
        Case(
            "yaml: custom !foo tag",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", "name: !foo bar\n"),
        ),
        Case(
            "yaml: duplicate key",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", "param: 1\nparam: 2\n"),
        ),
        Case("yaml: unknown key", [*py, "--config", "c.yml"], setup=_write("c.yml", "nope: 1\n")),
        Case(
            "yaml: wrong type for int",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", "param: abc\n"),
        ),
        Case(
            "yaml: mapping for int",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", "param: {a: 1}\n"),
        ),
        Case(
            "yaml: binary garbage",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", b"\x00\xff\xfe\x80garbage\x00"),
        ),
        Case(
            "yaml: 60 MB file",
            [*py, "--config", "c.yml"],
            setup=_write("c.yml", "name: " + "x" * 60_000_000 + "\n"),
        ),
        Case("config: missing file", [*py, "--config", "missing.yml"]),
        Case(
            "config: unreadable file",
            [*py, "--config", "secret.yml"],
            setup=_unreadable("secret.yml"),
        ),
        Case("config: directory", [*py, "--config", "."]),
        Case(
            "--experiment missing subtree",
            [*py, "--config", "m.yml", "--experiment", "nope"],
            setup=_write("m.yml", "process: {param: 2}\n"),
        ),
        Case(
            "--experiment names a scalar",
            [*py, "--config", "m.yml", "--experiment", "process"],
            setup=_write("m.yml", "process: 3\n"),
        ),
        Case("--experiment without --config", [*py, "--experiment", "process"], codes=(0, 2)),
        # -o
        Case("-o unknown key", [*py, "-o", "nope", "1"]),
        Case("-o unknown nested key", [*py, "-o", "model.nope=1"]),
        Case("-o key through a scalar", [*py, "-o", "param.x=1"]),
        Case("-o bad int", [*py, "-o", "param", "abc"]),
        Case("-o bad float", [*py, "-o", "ratio=fast"]),
        Case("-o empty key", [*py, "-o", "=1"]),
        Case("-o missing value", [*py, "-o", "param"]),
        Case("-o deep nesting value", [*py, "-o", "items", "[" * 10000]),
        Case("-o alias bomb value", [*py, "-o", "items", BOMB_ONE_LINE], limit_memory=True),
        Case("-o python tag value on dict field", [*py, "-o", "opts", "!!python/name:os.system"]),
        Case(
            "-o python tag text on str field (kept as text)",
            [*py, "-o", "name", "!!python/name:os.system"],
            expect_ok=True,
        ),
        Case("-o bad yaml value on list", [*py, "-o", "items", "[1, 2"]),
        Case("key=value bad type", [*py, "param=1.5.3"]),
        Case("unknown flag", [*py, "--nope"]),
        # --tasks / --sweep
        Case("--tasks missing file", [*py, "--tasks", "missing.txt", "--task_to", "param"]),
        Case(
            "--tasks unreadable file",
            [*py, "--tasks", "t.txt", "--task_to", "param"],
            setup=_unreadable("t.txt"),
        ),
        Case(
            "--tasks duplicate key on a line",
            [*py, "--tasks", "t.txt"],
            setup=_write("t.txt", "param=1 param=2\n"),
        ),
        Case(
            "--tasks bad value type",
            [*py, "--tasks", "t.txt", "--task_to", "param"],
            setup=_write("t.txt", "1\nabc\n"),
        ),
        Case("--tasks unknown key", [*py, "--tasks", "t.txt"], setup=_write("t.txt", "nope=1\n")),
        Case(
            "--tasks without --task_to, bare value",
            [*py, "--tasks", "t.txt"],
            setup=_write("t.txt", "1\n"),
        ),
        Case(
            "--tasks binary file",
            [*py, "--tasks", "t.txt", "--task_to", "param"],
            setup=_write("t.txt", b"\x00\xff\xfe\x80\n"),
        ),
        Case(
            "--tasks yaml alias bomb",
            [*py, "--tasks", "t.yml"],
            setup=_write("t.yml", BOMB),
            limit_memory=True,
        ),
        Case(
            "--task_to unknown key",
            [*py, "--tasks", "t.txt", "--task_to", "nope"],
            setup=_write("t.txt", "1\n"),
        ),
        Case("--sweep no '='", [*py, "--sweep", "param"]),
        Case("--sweep bad type", [*py, "--sweep", "param=1,abc"]),
        Case("--sweep unknown key", [*py, "--sweep", "nope=1,2"]),
        Case("--sweep empty values", [*py, "--sweep", "param="]),
        Case("--n_jobs zero", [*py, "--sweep", "param=1,2", "--n_jobs", "0"]),
        Case("--n_jobs not a number", [*py, "--sweep", "param=1,2", "--n_jobs", "many"]),
        # hostile sheets for flexlock ls/show/verify/diff
        Case(
            "ls: status: 5",
            [FLEXLOCK, "ls", "results/s5"],
            codes=(0, 2),
            expect_invalid=True,
            setup=_sheet("s5", _replace_header("status", "5")),
        ),
        Case(
            "ls: id: [1, 2]",
            [FLEXLOCK, "ls", "results/idl"],
            codes=(0, 2),
            expect_invalid=True,
            setup=_sheet("idl", _replace_header("id", "[1, 2]")),
        ),
        Case(
            "ls: created: 5",
            [FLEXLOCK, "ls", "results/c5"],
            codes=(0, 2),
            expect_invalid=True,
            setup=_sheet("c5", _replace_header("created", "5")),
        ),
        Case(
            "ls: truncated sheet",
            [FLEXLOCK, "ls", "results/tr"],
            codes=(0, 2),
            expect_invalid=True,
            setup=_sheet("tr", lambda t: t[: len(t) // 3]),
        ),
        Case(
            "ls: 70 MB sheet",
            [FLEXLOCK, "ls", "results/big"],
            codes=(0, 2),
            expect_invalid=True,
            setup=_sheet(
                "big",
                lambda t: t.replace(
                    "config:", "config:\n  blob: " + "x" * 70_000_000 + "\n  _:", 1
                ),
            ),
        ),
        Case(
            "ls: alias bomb in sheet",
            [FLEXLOCK, "ls", "results/bomb"],
            codes=(0, 2),
            expect_invalid=True,
            limit_memory=True,
            setup=_sheet("bomb", lambda t: BOMB + t),
        ),
        Case(
            "show: status: 5",
            [FLEXLOCK, "show", "results/s5"],
            setup=_sheet("s5", _replace_header("status", "5")),
        ),
        Case(
            "show: truncated sheet",
            [FLEXLOCK, "show", "results/tr"],
            setup=_sheet("tr", lambda t: t[: len(t) // 3]),
        ),
        Case(
            "show: 70 MB sheet",
            [FLEXLOCK, "show", "results/big"],
            setup=_sheet(
                "big",
                lambda t: t.replace(
                    "config:", "config:\n  blob: " + "x" * 70_000_000 + "\n  _:", 1
                ),
            ),
        ),
        Case(
            "show: python tag in sheet",
            [FLEXLOCK, "show", "results/pt"],
            setup=_sheet("pt", _replace_header("status", "!!python/name:os.system")),
        ),
        Case("show: missing run", [FLEXLOCK, "show", "results/none"]),
        Case(
            "verify: id: [1, 2]",
            [FLEXLOCK, "verify", "results/idl"],
            codes=(2, 3),
            setup=_sheet("idl", _replace_header("id", "[1, 2]")),
        ),
        Case(
            "verify: truncated sheet",
            [FLEXLOCK, "verify", "results/tr"],
            codes=(2, 3),
            setup=_sheet("tr", lambda t: t[: len(t) // 3]),
        ),
        Case(
            "verify: binary sheet",
            [FLEXLOCK, "verify", "results/bin"],
            codes=(2, 3),
            setup=_sheet("bin", lambda t: "\x00\x01garbage"),
        ),
        Case(
            "diff: created: 5 vs good",
            [FLEXLOCK, "diff", "results/c5", "results/good"],
            setup=_sheet("c5", _replace_header("created", "5")),
        ),
        Case(
            "diff: alias bomb vs good",
            [FLEXLOCK, "diff", "results/bomb", "results/good"],
            limit_memory=True,
            setup=_sheet("bomb", lambda t: BOMB + t),
        ),
        Case("diff: missing run", [FLEXLOCK, "diff", "results/none", "results/good"]),
    ]


def _unreadable_case(case: Case) -> bool:
    return case.setup is not None and getattr(case.setup, "unreadable", False)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _run_case(case: Case, base: Path) -> Outcome:
    root = Path(tempfile.mkdtemp(dir=base))
    (root / "script.py").write_text(SCRIPT)
    shutil.copytree(base / "good", root / "results" / "good")
    if case.setup is not None:
        case.setup(root)
    env = {**os.environ, "FLEXLOCK_DEBUG": ""}
    env.pop("FLEXLOCK_DEBUG")
    argv = case.argv
    if _unreadable_case(case) and os.geteuid() == 0 and shutil.which("setpriv"):
        # Root reads mode 000 files: run the case as `nobody` so the kernel refuses.
        base.chmod(0o755)
        for path in [root, *root.rglob("*")]:
            if path.is_dir():
                path.chmod(0o777)
        env["HOME"] = str(root)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            argv,
            check=False,
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT,
            preexec_fn=_limit_memory if case.limit_memory else None,
        )
    except subprocess.TimeoutExpired:
        return Outcome(case, "hang", None, time.perf_counter() - start, "")
    seconds = time.perf_counter() - start
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    first = (
        lines[0] if lines else done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
    )[:160]
    if "Traceback (most recent call last)" in done.stderr + done.stdout:
        verdict = "traceback"
    elif case.expect_ok:
        verdict = (
            "accepted as documented"
            if done.returncode == 0
            else f"refused (exit {done.returncode})"
        )
    elif _unreadable_case(case) and os.geteuid() == 0 and not shutil.which("setpriv"):
        verdict = "n/a (root reads mode 000)"
    elif case.expect_invalid:
        listed = "invalid" in done.stdout + done.stderr
        verdict = (
            "listed invalid" if listed and done.returncode in case.codes else "silent acceptance"
        )
        first = next(
            (line for line in (done.stdout + done.stderr).splitlines() if "invalid" in line), first
        )[:160]
    elif done.returncode == 0:
        verdict = "silent acceptance"
    elif done.returncode < 0:
        verdict = f"killed by signal {-done.returncode}"
    elif done.returncode not in case.codes:
        verdict = f"wrong exit code {done.returncode}"
    elif (
        len(lines) == 1 or sum("error:" in line for line in lines) == 1
    ):  # argparse: usage + 1 error
        verdict = "one-line error"
    else:
        verdict = f"{len(lines)} stderr lines"
    return Outcome(case, verdict, done.returncode, seconds, first)


def _good_run(base: Path) -> None:
    """A real succeeded run whose sheet the hostile sheets are made from."""
    work = base / "seed"
    work.mkdir()
    (work / "script.py").write_text(SCRIPT)
    subprocess.run(
        [sys.executable, "script.py"], cwd=work, check=True, capture_output=True, timeout=60
    )
    shutil.copytree(work / "results" / "process", base / "good")


def _status(path: Path) -> str:
    try:
        return str(yaml.safe_load(path.read_text())["status"])
    except (OSError, yaml.YAMLError, TypeError, KeyError):
        return "unreadable"


def _kill_trials(base: Path, count: int, rng: random.Random) -> dict[str, int]:
    tally = dict.fromkeys(
        [
            "sigterm runs",
            "sigterm sheet running",
            "kill9 runs",
            "kill9 sheet running",
            "kill9 marked interrupted by next run",
            "kill9 next run failed",
            "not started",
        ],
        0,
    )
    for trial in range(count):
        signum = signal.SIGTERM if trial % 2 == 0 else signal.SIGKILL
        work = base / f"kill{trial}"
        work.mkdir()
        (work / "script.py").write_text(SCRIPT)
        child = subprocess.Popen(
            [sys.executable, "script.py", "-o", "sleep", "3"],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sheet = work / "results" / "process" / "run.lock"
        deadline = time.monotonic() + 30
        while not sheet.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 2.0))  # a random moment in the run
        child.send_signal(signum)
        child.wait(timeout=30)
        if not sheet.exists():
            tally["not started"] += 1
            continue
        status = _status(sheet)
        if signum == signal.SIGTERM:
            tally["sigterm runs"] += 1
            tally["sigterm sheet running"] += status == "running"
            continue
        tally["kill9 runs"] += 1
        if status != "running":
            continue
        tally["kill9 sheet running"] += 1
        done = subprocess.run(
            [sys.executable, "script.py"], check=False, cwd=work, capture_output=True, timeout=60
        )
        history = work / "results" / "process" / ".flexlock" / "history"
        marked = (
            any("-interrupted-" in p.name for p in history.glob("*.lock"))
            if history.is_dir()
            else False
        )
        if done.returncode != 0 or _status(sheet) != "succeeded":
            tally["kill9 next run failed"] += 1
        tally["kill9 marked interrupted by next run"] += marked
    return tally


def _loky_workers(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{parent}\n" in status and b"loky" in command:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _worker_trials(base: Path, count: int) -> dict[str, int]:
    tally = {
        "task lists killed": 0,
        "workers seen": 0,
        "workers alive after 15 s": 0,
        "sheets running after 15 s": 0,
    }
    for trial in range(count):
        signum = signal.SIGKILL if trial % 2 == 0 else signal.SIGTERM
        work = base / f"workers{trial}"
        work.mkdir()
        (work / "script.py").write_text(SCRIPT)
        child = subprocess.Popen(
            [
                sys.executable,
                "script.py",
                "--sweep",
                "param=1,2",
                "--n_jobs",
                "2",
                "-o",
                "sleep",
                "60",
            ],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline:
            workers = _loky_workers(child.pid)
            if len(workers) >= 2 and len(list(work.rglob("run.lock"))) >= 2:
                break
            time.sleep(0.2)
        child.send_signal(signum)
        child.wait(timeout=30)
        tally["task lists killed"] += 1
        tally["workers seen"] += len(workers)
        time.sleep(15)
        alive = [pid for pid in workers if _alive(pid)]
        tally["workers alive after 15 s"] += len(alive)
        for pid in alive:  # clean up what the trial found
            os.kill(pid, signal.SIGKILL)
        tally["sheets running after 15 s"] += sum(
            _status(p) == "running" for p in work.rglob("run.lock")
        )
    return tally


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("`", "'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kills", type=int, default=12, help="kill -9/SIGTERM trials (alternating)"
    )
    parser.add_argument("--worker-trials", type=int, default=2, help="--n_jobs 2 task lists killed")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        _good_run(base)
        outcomes = []
        for case in _cases():
            outcome = _run_case(case, base)
            print(
                f"{outcome.verdict:18} {outcome.code!s:>4} {outcome.seconds:6.2f}s  {case.name}",
                flush=True,
            )
            outcomes.append(outcome)
        kills = _kill_trials(base, args.kills, rng)
        print(kills, flush=True)
        workers = _worker_trials(base, args.worker_trials)
        print(workers, flush=True)
    verdicts: dict[str, int] = {}
    for outcome in outcomes:  # controls are listed but not counted as bad inputs
        if outcome.case.expect_ok:
            continue
        verdicts[outcome.verdict] = verdicts.get(outcome.verdict, 0) + 1
    summary = ", ".join(f"{name}: {n}" for name, n in sorted(verdicts.items()))
    bad = sum(not o.case.expect_ok for o in outcomes)
    print(f"{bad} bad inputs: {summary}")
    rows = "\n".join(
        f"| {o.case.name} | {o.verdict} | {o.code} | {o.seconds:.2f} | `{_cell(o.line)}` |"
        for o in outcomes
    )
    RESULTS.write_text(
        "# Hostile inputs and kill trials (issue 20)\n\n"
        "Command: `.venv/bin/python benchmarks/trial_hostile.py`"
        f" (kills={args.kills}, worker trials={args.worker_trials}, seed={args.seed});"
        f" {time.perf_counter() - started:.0f} s on a loaded 2-core machine.\n"
        f"Each bad input is a real subprocess, timeout {TIMEOUT:.0f} s;"
        " alias bombs run under RLIMIT_AS 1 GiB.\n\n"
        f"## Summary\n\n- {bad} bad inputs: {summary}\n"
        + "".join(f"- {name}: {n}\n" for name, n in kills.items())
        + "".join(f"- {name}: {n}\n" for name, n in workers.items())
        + "\n## Bad inputs\n\n| input | verdict | exit | s | first line |\n|---|---|---|---|---|\n"
        + rows
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
