"""`flexlock reproduce`: re-run a recorded run and compare its identity and outputs.

The recorded command (the sheet's `env.argv`, run with this interpreter) is run
again in the run's working directory as it is now (the directory the run sits in
minus its relative save_dir, else the recorded cwd), serially, into a fresh
save_dir `<save_dir>.reproduce-<n>` (`-o save_dir …` appended, so the original is
never touched) or, with `in_place`, into the original save_dir.

A fresh save_dir changes the config's `save_dir`, which is part of the identity:
the id expected is therefore the one the original inputs give with that one value
changed (`compute_id`), and any other difference is named from `diff_runs`.

Only code the run id vouches for is run: the recorded command must be a script
inside a recorded repository whose tree is the recorded one. `env.argv` is not part
of the identity, so a sheet from a hostile remote could carry any command there;
checking the tree first makes the script the one the id names.

Verdicts: `reproduced` (same identity, same outputs: exit 0), `outputs differ`
(same inputs, other bytes: the run is not deterministic, exit 3), `could not
reproduce` (the identity differs, the script failed, nothing to re-run: exit 2).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from flexlock.core import (
    ConfigError,
    LockFileError,
    RunLock,
    compute_id,
    diff_runs,
    load,
    resolve_lock_path,
    verify,
    working_directory,
)

__all__ = ["Verdict", "reproduce", "reproduce_run", "task_free_argv"]

Kind = Literal["reproduced", "outputs differ", "could not reproduce"]
_EXIT_CODES: dict[str, int] = {"reproduced": 0, "outputs differ": 3, "could not reproduce": 2}

# Flags of a task list or an executor, with (True) or without (False) a value: a
# reproduction runs the one task here, serially.
_TASK_FLAGS = {
    "tasks": True,
    "task_to": True,
    "sweep": True,
    "n_jobs": True,
    "executor": True,
    "executor_config": True,
    "slurm_config": True,
    "no_wait": False,
    "force": False,
    "fail_fast": False,
    "resume": False,
}
_IDENTITY_SECTIONS = ("config", "code", "data", "prevs")


@attrs.frozen
class Verdict:
    """The outcome of reproducing one run."""

    run: Path  # the original run directory
    kind: Kind
    reasons: tuple[str, ...] = ()  # why it could not reproduce, or the outputs that differ
    reproduction: Path | None = None  # where the re-run wrote its sheet

    @property
    def exit_code(self) -> int:
        """Return 0 (reproduced), 3 (outputs differ) or 2 (could not reproduce)."""
        return _EXIT_CODES[self.kind]

    def describe(self) -> str:
        """Render as the lines `flexlock reproduce` prints."""
        head = f"{self.run}: {self.kind}"
        if self.reproduction is not None:
            head += f" (re-run in {self.reproduction})"
        return "\n".join([head, *(f"  {reason}" for reason in self.reasons)])


def _flag_name(token: str) -> str | None:
    if not token.startswith("--"):
        return None
    return token[2:].partition("=")[0].replace("-", "_")


def task_free_argv(argv: Sequence[str], config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Drop task-list and executor flags; return (argv, the `-o` pairs that re-create the task).

    The task's own values (of `--task_to KEY` and each `--sweep KEY=…`) are taken
    from the recorded config and given back as `-o KEY=VALUE`.

    Raises:
        ConfigError: a task file without `--task_to` (the keys each of its lines
            sets are only in that file).
    """
    kept: list[str] = []
    keys: list[str] = []
    had_tasks = False
    index = 0
    while index < len(argv):
        token = argv[index]
        name = _flag_name(token)
        if token in ("-o", "--override"):  # -o KEY VALUE or -o KEY=VALUE: keep verbatim
            width = 2 if index + 1 < len(argv) and "=" in argv[index + 1] else 3
            kept += argv[index : index + width]
            index += width
            continue
        if name not in _TASK_FLAGS:
            kept.append(token)
            index += 1
            continue
        value: str | None = None
        if _TASK_FLAGS[name]:
            if "=" in token:
                value = token.partition("=")[2]
                index += 1
            else:
                value = argv[index + 1] if index + 1 < len(argv) else ""
                index += 2
        else:
            index += 1
        if name == "tasks":
            had_tasks = True
        elif name == "task_to" and value:
            keys.append(value)
        elif name == "sweep" and value:
            keys.append(value.partition("=")[0].strip())
    if had_tasks and not any(_flag_name(t) == "task_to" for t in argv):
        raise ConfigError(
            "the run is a task of a task file without --task_to: the keys each line set are "
            "only in that file; re-run the task by hand with its -o overrides"
        )
    overrides = []
    for key in keys:
        node: Any = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        rendered = node if isinstance(node, str) else json.dumps(node)
        overrides += ["-o", f"{key}={rendered}"]
    return kept, overrides


def _fresh_save_dir(cwd: Path, save_dir: str) -> str:
    """Create `<save_dir>.reproduce-<n>` (the first free n, taken with mkdir); return it."""
    for number in range(1, 10_000):
        candidate = f"{save_dir.rstrip('/')}.reproduce-{number}"
        try:
            (cwd / candidate).mkdir(parents=True)
        except FileExistsError:
            continue
        return candidate
    raise ConfigError(f"{cwd / save_dir}: 9,999 reproductions exist; remove some")


def _identity_differences(original: Path, reproduction: Path) -> list[str]:
    """Name what differs in the identity (config, code, data, upstream), save_dir aside."""
    lines = []
    for change in diff_runs(original, reproduction).changes:
        if change.section not in _IDENTITY_SECTIONS:
            continue
        if change.section == "config" and change.key == "save_dir":
            continue
        text = f"{change.section} {change.key}: {change.kind}"
        if change.section == "config":
            text += f" ({change.old!r} -> {change.new!r})"
        detail = "; ".join(change.detail[:5])
        lines.append(text + (f": {detail}" if detail else ""))
    return lines or ["the identity differs, but no section of diff names it (flexlock diff)"]


def _output_differences(original: RunLock, reproduced: RunLock) -> list[str]:
    before, after = original.outputs or {}, reproduced.outputs or {}
    lines = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            lines.append(f"{name}: not written by the re-run")
        elif name not in before:
            lines.append(f"{name}: written only by the re-run")
        else:
            old, new = before[name], after[name]
            same = old.hash == new.hash if old.hash and new.hash else old.size == new.size
            if not same:
                lines.append(f"{name}: differs ({old.hash or old.size} -> {new.hash or new.size})")
    return lines


def _unvouched(argv: Sequence[str], cwd: Path, lock_path: Path) -> list[str]:
    """Say why the recorded command is not code the run id vouches for; [] when it is."""
    script = argv[0]
    if script.startswith("-") or not script.endswith(".py"):
        return [
            f"the recorded command {' '.join(argv[:2])!r} is not a Python script: refusing to "
            "run it (a sheet's argv is not part of its identity)"
        ]
    path = (cwd / script).resolve()
    if not path.is_file():
        return [f"the script {script} is not in {cwd}"]
    report = verify(lock_path, data=False, prevs=False, outputs=False)
    changed = [check for check in report.code if check.status != "ok"]
    if changed:
        lines = []
        for check in changed:
            files = ", ".join(line.replace("\t", " ") for line in check.files[:10])
            lines.append(
                f"code {check.name}: {check.status}: {check.detail}"
                + (f" ({files})" if files else "")
            )
        return lines
    if not any(path.is_relative_to(Path(check.path).resolve()) for check in report.code):
        return [
            f"the script {script} is in no recorded repository: nothing vouches for its code; "
            "record the repo (runlock(repos=...)) or re-run it by hand"
        ]
    return []


def _expected_id(lock: RunLock, save_dir: str | None) -> str:
    config = dict(lock.config)
    if save_dir is not None and "save_dir" in config:
        config["save_dir"] = save_dir
    return compute_id(
        config,
        {key: repo.tree for key, repo in lock.code.items()},
        {key: record.hash for key, record in lock.data.items()},
        {key: prev.id for key, prev in lock.prevs.items()},
    )


def reproduce_run(
    run_dir: str | os.PathLike[str],
    *,
    in_place: bool = False,
    report: Callable[[str], None] = print,
) -> Verdict:
    """Re-run one recorded run serially and compare its identity and outputs.

    Raises:
        LockFileError: `run_dir` holds no readable sheet.
    """
    lock_path = resolve_lock_path(run_dir)
    run = lock_path.parent
    original = load(lock_path)

    def fail(*reasons: str, where: Path | None = None) -> Verdict:
        return Verdict(run=run, kind="could not reproduce", reasons=reasons, reproduction=where)

    argv = list(original.env.argv) if original.env is not None else []
    if not argv:
        return fail("the sheet records no command (env.argv is empty)")
    cwd = working_directory(original, lock_path)
    if cwd is None:
        return fail("the run's working directory is not on this machine (recorded cwd missing)")
    try:
        argv, task_overrides = task_free_argv(argv, original.config)
    except ConfigError as error:
        return fail(str(error))
    refused = _unvouched(argv, cwd, lock_path)
    if refused:
        return fail(*refused)
    save_dir = original.save_dir
    if in_place or save_dir is None:
        new_save_dir = save_dir
        scratch = Path(tempfile.mkdtemp(prefix="flexlock-reproduce-"))
        reference = scratch / "run.lock"
        shutil.copy2(lock_path, reference)  # the original sheet, before the re-run replaces it
        command = [sys.executable, *argv, *task_overrides]
    else:
        new_save_dir = _fresh_save_dir(cwd, save_dir)
        scratch, reference = None, lock_path
        command = [sys.executable, *argv, *task_overrides, "-o", f"save_dir={new_save_dir}"]
    try:
        report(f"reproducing {run}: {' '.join(command[1:])} (in {cwd})")
        finished = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
        )
        where = cwd / (new_save_dir or str(run))
        if finished.returncode != 0:
            tail = finished.stderr.strip().splitlines()[-5:]
            return fail(f"the script failed (exit {finished.returncode})", *tail, where=where)
        try:
            reproduced = load(where / "run.lock")
        except LockFileError as error:
            return fail(f"the re-run wrote no readable sheet: {error}", where=where)
        if reproduced.status != "succeeded":
            return fail(f"the re-run is {reproduced.status}", where=where)
        if reproduced.id != _expected_id(original, new_save_dir):
            return fail(
                f"the identity differs ({original.id} recorded, {reproduced.id} now)",
                *_identity_differences(reference, where),
                where=where,
            )
        differing = _output_differences(original, reproduced)
        if differing:
            return Verdict(
                run=run,
                kind="outputs differ",
                reasons=(
                    "same inputs, other outputs: the run is not deterministic",
                    *differing,
                ),
                reproduction=where,
            )
        notes = () if original.outputs is not None else ("the original recorded no outputs",)
        return Verdict(run=run, kind="reproduced", reasons=notes, reproduction=where)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _lineage(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Return the run and its upstream runs' sheets, upstream first, each once.

    Upstream runs are looked up from where the run is now (its working directory),
    before the recorded cwd: a pulled copy reproduces its own upstream runs, not
    the originals that may still sit on this machine.

    Raises:
        LockFileError: an upstream sheet is missing.
    """
    ordered: list[Path] = []
    visiting: set[Path] = set()

    def visit(lock_path: Path) -> None:
        key = lock_path.resolve()
        if key in ordered or key in visiting:  # done, or a cycle: not followed again
            return
        visiting.add(key)
        lock = load(key)
        where = working_directory(lock, key)
        for prev in lock.prevs.values():
            recorded = Path(prev.path)
            candidates = [recorded] if recorded.is_absolute() else []
            candidates += [base / recorded for base in (where, Path.cwd()) if base is not None]
            found = next((c for c in candidates if c.exists()), None)
            if found is None:
                raise LockFileError(
                    f"upstream run {prev.path} of {key} is missing (looked at "
                    f"{', '.join(map(str, candidates))}); restore it, or reproduce without "
                    "--upstream"
                )
            visit(resolve_lock_path(found))
        ordered.append(key)

    visit(resolve_lock_path(run_dir))
    return ordered


def reproduce(
    run_dir: str | os.PathLike[str],
    *,
    upstream: bool = False,
    in_place: bool = False,
    report: Callable[[str], None] = print,
) -> list[Verdict]:
    """Reproduce a run (with `upstream`: its upstream runs first, in lineage order).

    Each run is re-run against the original upstream runs, so one verdict never
    depends on another.

    Raises:
        LockFileError: a sheet (the run's, or with `upstream` an upstream one) is missing.
    """
    runs = _lineage(run_dir) if upstream else [resolve_lock_path(run_dir)]
    return [reproduce_run(run.parent, in_place=in_place, report=report) for run in runs]
