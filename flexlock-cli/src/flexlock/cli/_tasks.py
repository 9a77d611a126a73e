"""Task lists: read task files and sweeps, validate every task, lay out save_dirs, run, resume.

Everything that can be wrong with a task (unknown key, bad value, duplicate,
unknown executor or option) is found before the first task starts, so a bad
line 900 never leaves 899 finished runs and an error behind.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from flexlock.cli._config import ConfigTree, Text, load_yaml_file, resolve_text
from flexlock.cli._contract import Executor, ExecutorOptions, Task, TaskResult, executor_traits
from flexlock.cli._render import default_plain, render_config, resolve
from flexlock.cli._runner import CodeFlags, ConfiguredFunction, FunctionRef, RunTask, script_repos
from flexlock.cli._yaml_text import yaml_kind
from flexlock.core import ConfigError, ErrorRecord, TaskFailedError, clear_registered, mark_failed

__all__ = [
    "PlannedTask",
    "TaskOptions",
    "TaskSpec",
    "plan_tasks",
    "read_task_file",
    "run_task_list",
    "sweep_specs",
    "task_label",
]

_YAML_SUFFIXES = (".yml", ".yaml", ".json")
_LABEL_MAX = 80


@attrs.frozen
class TaskOptions:
    """The task-list flags of a `@clicfg` command line."""

    files: tuple[str, ...] = ()
    task_to: str | None = None
    sweeps: tuple[str, ...] = ()
    n_jobs: int | None = None
    executor: str | None = None
    executor_config: str | None = None
    slurm_config: str | None = None
    no_wait: bool = False
    force: bool = False
    fail_fast: bool = False
    print_config: bool = False
    code: CodeFlags = attrs.field(factory=CodeFlags)
    tee: bool = False  # --tee: show each task's output as well as writing its logs


@attrs.frozen
class TaskSpec:
    """A task as read: its overrides (dotted key → raw value) and where it came from."""

    overrides: tuple[tuple[str, Any], ...]
    source: str


@attrs.frozen
class PlannedTask:
    """A validated task and its resolved plain config (what its run.lock records)."""

    task: Task
    config: dict[str, Any]


# -- reading ------------------------------------------------------------------------------------


def _flatten(
    tree: ConfigTree, mapping: Mapping[Any, Any], prefix: str = ""
) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and tree.is_section(dotted):
            items.extend(_flatten(tree, value, dotted + "."))
        else:
            items.append((dotted, value))
    return items


def read_task_file(path: str, task_to: str | None, tree: ConfigTree) -> list[TaskSpec]:
    """Read one task file.

    A `.yml`/`.yaml`/`.json` file is a list whose items are mappings of
    (dotted or nested) overrides, or plain values for `task_to`. Any other file
    has one task per line: the value for `task_to`, or `KEY=VALUE ...` pairs
    when there is no `task_to`. Blank lines and lines starting with `#` are skipped.

    Raises:
        ConfigError: unreadable file, bad YAML, or an item of the wrong shape (file:line).
    """
    if Path(path).suffix.lower() in _YAML_SUFFIXES:
        items = load_yaml_file(path, what="task file")
        if items is None:
            return []
        if not isinstance(items, list):
            raise ConfigError(
                f"{path}: a YAML task file must be a list of tasks (mappings of overrides, "
                f"or values for --task_to), got a {yaml_kind(items)}"
            )
        lines = getattr(items, "lines", [0] * len(items))
        specs = []
        for item, line in zip(items, lines, strict=True):
            source = f"{path}:{line}"
            if isinstance(item, Mapping):
                specs.append(TaskSpec(tuple(_flatten(tree, item)), source))
            elif task_to is not None:
                specs.append(TaskSpec(((task_to, item),), source))
            else:
                raise ConfigError(
                    f"{source}: a task must be a mapping of overrides like {{param: 3}}; "
                    "for plain values pass --task_to KEY"
                )
        return specs
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # an editor's BOM is not a value
    except FileNotFoundError:
        raise ConfigError(f"task file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read task file {path!r}: {error}") from None
    specs = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        source = f"{path}:{number}"
        if task_to is not None:
            specs.append(TaskSpec(((task_to, Text(line)),), source))
            continue
        try:
            words = shlex.split(line)
        except ValueError as error:
            raise ConfigError(f"{source}: {error}") from None
        pairs: list[tuple[str, Any]] = []
        for word in words:
            key, equals, value = word.partition("=")
            if not equals or not key:
                raise ConfigError(
                    f"{source}: {word!r} is not KEY=VALUE; a file of plain values needs "
                    "--task_to KEY"
                )
            if any(key == seen for seen, _ in pairs):
                raise ConfigError(
                    f"{source}: {key!r} is set twice on this line; keep one {key}=VALUE"
                )
            pairs.append((key, Text(value)))
        specs.append(TaskSpec(tuple(pairs), source))
    return specs


def sweep_specs(sweeps: Sequence[str]) -> list[TaskSpec]:
    """Expand `KEY=V1,V2` (or `KEY=[V1, V2]`) sweeps into their cartesian product."""
    from flexlock.cli._config import ConversionError, parse_yaml_text

    axes: list[tuple[str, list[Any]]] = []
    for sweep in sweeps:
        key, equals, values = sweep.partition("=")
        if not equals or not key.strip() or not values:
            raise ConfigError(f"--sweep {sweep!r}: expected KEY=V1,V2,... (or KEY=[V1, V2])")
        if any(swept == key.strip() for swept, _ in axes):
            raise ConfigError(
                f"--sweep {key.strip()} is given twice; sweep each key once, listing all its "
                f"values: --sweep {key.strip()}=V1,V2,V3"
            )
        if values.lstrip().startswith("["):
            try:
                parsed = parse_yaml_text(values)
            except ConversionError as error:
                raise ConfigError(f"--sweep {key}: {error}") from None
            if not isinstance(parsed, list):
                raise ConfigError(f"--sweep {key}: expected a list, got {values!r}")
            axes.append((key.strip(), list(parsed)))
        else:
            axes.append((key.strip(), [Text(v) for v in values.split(",")]))
    specs = []
    for number, combination in enumerate(itertools.product(*(values for _, values in axes)), 1):
        overrides = tuple((key, value) for (key, _), value in zip(axes, combination, strict=True))
        specs.append(TaskSpec(overrides, f"--sweep #{number}"))
    return specs


def _label_value(value: Any) -> str:
    if isinstance(value, str):
        return str(value)
    return json.dumps(resolve_text(value), separators=(",", ":"), sort_keys=True, default=str)


def _label_part(key: str, value: Any) -> str:
    """`key=value`, or `key=secret-<digest>` when the key or value holds a secret.

    The digest is a function of the value only, so a second invocation names the
    same directory (a task list stays resumable) while the value is never written.
    """
    from flexlock.core import RunOptions

    text = _label_value(value)
    redactor = RunOptions().redactor
    if redactor.is_secret(key) or redactor({"value": text})["value"] != text:
        return f"{key}=secret-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"
    return f"{key}={text}"


def task_label(overrides: Sequence[tuple[str, Any]]) -> str:
    """Name a task after its overrides, safe as one directory name: `param=3,model.lr=0.1`."""
    text = ",".join(_label_part(key, value) for key, value in overrides) or "defaults"
    safe = re.sub(r"[^A-Za-z0-9._=,+@-]+", "_", text).strip("._") or "task"
    if len(safe) > _LABEL_MAX:  # keep it readable and unique: a prefix plus a hash of the whole
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
        safe = f"{safe[: _LABEL_MAX - 11]}-{digest}"
    return safe


# -- planning -----------------------------------------------------------------------------------


def _resolve_task(
    tree: ConfigTree, overrides: Sequence[tuple[str, Any]], source: str
) -> dict[str, Any]:
    task_tree = tree.copy()
    try:
        for key, value in overrides:
            task_tree.set(key, value, source)
        return resolve(task_tree, private=True)[1]
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if source in message else f"task {source}: {message}") from None


def plan_tasks(tree: ConfigTree, specs: Sequence[TaskSpec]) -> tuple[list[PlannedTask], str | None]:
    """Validate every task and give each its save_dir; return the tasks and a note for the user.

    Tasks whose configs resolve to the same save_dir each get a subdirectory
    named after their overrides (`results/process/param=3`).

    Raises:
        ConfigError: a bad task (file:line), or two identical tasks (naming both).
    """
    from flexlock.cli._interpolation import has_marker
    from flexlock.core import canonical_json

    resolved: list[tuple[TaskSpec, dict[str, Any]]] = []
    seen: dict[str, TaskSpec] = {}
    for spec in specs:
        plain = _resolve_task(tree, spec.overrides, spec.source)
        key = canonical_json(plain)
        if key in seen:
            raise ConfigError(
                f"{seen[key].source} and {spec.source} are the same task "
                f"({task_label(spec.overrides)}); remove one of them"
            )
        seen[key] = spec
        resolved.append((spec, plain))
    groups: dict[str, list[int]] = {}
    for index, (_, plain) in enumerate(resolved):
        save_dir = plain.get("save_dir")
        if isinstance(save_dir, str) and save_dir:
            groups.setdefault(save_dir, []).append(index)
    note = None
    shared = {index for members in groups.values() if len(members) > 1 for index in members}
    if shared:
        # With nothing interpolated, nothing can depend on save_dir, and a `str` field keeps
        # the string given: the task's config is then its first one with the subdirectory as
        # save_dir, and building it again (half of planning a long list) would change nothing.
        swap = tree.leaf_spec("save_dir", "save_dir").type is str and not has_marker(tree.values)
        used: set[str] = set()
        for index in sorted(shared):
            spec, plain = resolved[index]
            label = task_label(spec.overrides)
            directory = f"{plain['save_dir'].rstrip('/')}/{label}"
            if directory in used:  # two labels sanitised to the same name
                directory += "-" + hashlib.sha256(canonical_json(plain).encode()).hexdigest()[:8]
            used.add(directory)
            overrides = (*spec.overrides, ("save_dir", directory))
            if swap and not any(has_marker(value) for _, value in spec.overrides):
                task_plain = {**plain, "save_dir": directory}
            else:
                task_plain = _resolve_task(tree, overrides, spec.source)
            resolved[index] = (attrs.evolve(spec, overrides=overrides), task_plain)
        bases = sorted({d for d, members in groups.items() if len(members) > 1})
        note = (
            f"flexlock: {len(shared)} tasks share save_dir {', '.join(bases)}: each runs in a "
            f"subdirectory named after its overrides (e.g. {resolved[min(shared)][1]['save_dir']})"
        )
    clear_registered()  # resolvers registered inputs while validating; each task registers its own
    planned = []
    for index, (spec, plain) in enumerate(resolved):
        save_dir = plain.get("save_dir")
        label_overrides = [
            (k, v) for k, v in spec.overrides if k != "save_dir" or index not in shared
        ]
        task = Task(
            index=index,
            label=task_label(label_overrides),
            overrides=spec.overrides,
            source=spec.source,
            save_dir=save_dir if isinstance(save_dir, str) and save_dir else None,
        )
        planned.append(PlannedTask(task, plain))
    return planned, note


# -- running ------------------------------------------------------------------------------------


def _executor(options: TaskOptions) -> tuple[str, Executor]:
    """Return (name, executor) for the task-list flags; errors before anything runs."""
    from flexlock.cli._executors import BUILTIN_EXECUTORS
    from flexlock.core import load_plugin

    name = options.executor
    config_file = options.executor_config
    if options.slurm_config is not None:
        if name not in (None, "slurm"):
            raise ConfigError(f"--slurm_config means --executor slurm, not --executor {name}")
        if config_file is not None:
            raise ConfigError("give --slurm_config FILE or --executor_config FILE, not both")
        name, config_file = "slurm", options.slurm_config
    if name is None:
        name = "local" if options.n_jobs not in (None, 1) else "serial"
    executor_options = ExecutorOptions()
    if config_file is not None:
        data = load_yaml_file(config_file, what="executor config")
        if data is not None and not isinstance(data, Mapping):
            raise ConfigError(f"{config_file}: executor options must be a mapping")
        executor_options = ExecutorOptions(
            resolve_text(dict(data or {})),
            source=os.fspath(config_file),
            lines=getattr(data, "lines", None),  # so errors name file:line
        )
    if options.n_jobs is not None:
        executor_options["n_jobs"] = options.n_jobs
    if options.no_wait:
        executor_options["no_wait"] = True
    # Built-ins come first, as for every plugin group, and need no entry-point scan.
    factory = BUILTIN_EXECUTORS.get(name) or load_plugin("flexlock.executors", name)
    executor: Executor = factory(executor_options)
    return name, executor


def _mark_interrupted(tasks: Sequence[Task], since: float) -> None:
    """Finalise sheets left `running` by tasks killed on Ctrl-C or --fail_fast as failed."""
    error = ErrorRecord(type="KeyboardInterrupt", message="interrupted before it finished")
    for task in tasks:
        if task.save_dir is None:
            continue
        try:  # a sheet older than this list is another run's: never ours to finalise
            if (Path(task.save_dir) / "run.lock").stat().st_mtime < since:
                continue
        except OSError:
            continue
        # The lock is free only once the task's process is gone (2 s covers its exit).
        mark_failed(task.save_dir, error, lock_wait_s=2.0)


def _failure_text(result: TaskResult) -> str:
    task = result.task
    where = f" in {task.save_dir}" if task.save_dir else ""
    logs = f"\n  log: {result.log_paths[-1]}" if result.log_paths else ""
    details = "".join(f"\n  {key}: {value}" for key, value in result.details.items())
    return f"task {task.label} ({task.source}) failed{where}: {result.error}{logs}{details}"


def run_task_list(decorated: ConfiguredFunction, tree: ConfigTree, options: TaskOptions) -> int:
    """Read, validate, resume and run a task list; return the exit code (0, 1, 2 or 130)."""
    from flexlock.cli._progress import Progress, summary_table

    if options.task_to is not None:
        tree.leaf_spec(options.task_to, "--task_to")
    file_specs = [
        spec for file in options.files for spec in read_task_file(file, options.task_to, tree)
    ]
    if options.task_to is not None and not options.files:
        raise ConfigError("--task_to KEY needs --tasks FILE")
    grid = sweep_specs(options.sweeps) if options.sweeps else []
    if file_specs and grid:
        specs = [
            TaskSpec((*a.overrides, *b.overrides), f"{a.source} {b.source}")
            for a, b in itertools.product(file_specs, grid)
        ]
    else:
        specs = file_specs or grid
    if not specs:
        raise ConfigError(f"no tasks in {', '.join(options.files) or 'the sweeps'}")
    chosen_now = "FLEXLOCK_NOW" not in os.environ
    planned, note = plan_tasks(tree, specs)
    chosen_now = chosen_now and "FLEXLOCK_NOW" in os.environ  # ${now:...} took the time
    if options.print_config:
        defaults = default_plain(decorated.config_class)
        for item in planned:
            task = item.task
            print(f"# task {task.index + 1}/{len(planned)}: {task.label} ({task.source})")
            print(render_config(item.config, defaults))
            print("---")
        return 0
    name, executor = _executor(options)
    traits = executor_traits(executor)
    if note:
        print(note, file=sys.stderr)
    if chosen_now:
        print(
            f"flexlock: ${{now}} is {os.environ['FLEXLOCK_NOW']} for these tasks; to resume "
            f"them, run again with FLEXLOCK_NOW={os.environ['FLEXLOCK_NOW']}",
            file=sys.stderr,
        )
    if all(item.task.save_dir is None for item in planned):
        print(
            "flexlock: the config has no save_dir: tasks are not recorded and cannot be resumed",
            file=sys.stderr,
        )
    results: list[TaskResult] = []
    pending: list[Task] = []
    in_flight = 0
    if options.force:
        pending = [item.task for item in planned]
    else:
        from flexlock.core import rerun_reason

        for item in planned:
            if (
                item.task.save_dir is not None
                and rerun_reason(item.task.save_dir, config=item.config, **options.code.options())
                is None
            ):
                results.append(TaskResult(task=item.task, status="skipped"))
            else:
                pending.append(item.task)
        # An executor that submits jobs says which tasks are still queued or running
        # (one scheduler query for all of them): those are never submitted twice.
        statuses_of = getattr(executor, "statuses", None)
        if statuses_of is not None and pending:
            statuses = statuses_of([task.save_dir for task in pending if task.save_dir])
            counts = dict.fromkeys(("queued", "running", "succeeded", "failed"), 0)
            counts["succeeded"] = len(results)
            waiting = []
            for task in pending:
                status = statuses.get(task.save_dir or "", "missing")
                if status in ("queued", "running"):
                    counts[status] += 1
                    continue
                if status == "failed":
                    counts["failed"] += 1
                waiting.append(task)
            in_flight = counts["queued"] + counts["running"]
            missing = len(waiting) - counts["failed"]
            line = ", ".join(f"{n} {name}" for name, n in counts.items())
            print(
                f"flexlock: {line}" + (f", {missing} not submitted" if missing else ""),
                file=sys.stderr,
            )
            pending = waiting
        if results:
            print(
                f"flexlock: {len(results)} of {len(planned)} tasks already done, skipped "
                "(--force reruns them)",
                file=sys.stderr,
            )
        if in_flight:
            print(
                f"flexlock: {in_flight} tasks still queued or running, not submitted again",
                file=sys.stderr,
            )
    repos = script_repos(decorated.function) if any(t.save_dir for t in pending) else None
    # An executor that draws its own live line (e.g. slurm's pending/running counts) keeps
    # the terminal: two lines redrawn in place would overwrite each other.
    progress = Progress(
        len(pending), traits.n_jobs, enabled=False if traits.draws_progress else None
    )
    reported: set[int] = set()
    interrupted = stopped = False
    started = time.time() - 1.0  # sheets written by this run have a later mtime
    if pending:
        runner = RunTask(
            FunctionRef.of(decorated.function),
            tree.values,
            tree.origins,
            repos,
            code=options.code,
            tee=options.tee,
            now=os.environ.get("FLEXLOCK_NOW"),
        )
        stream = executor.run(runner, pending)
    else:  # all done: a resume of a finished list imports nothing more
        stream = iter(())
    try:
        progress.draw()
        for result in stream:
            reported.add(result.task.index)
            results.append(result)
            progress.update(result)
            if result.status == "failed":
                progress.message(_failure_text(result))
                if options.fail_fast:
                    stopped = True
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            try:
                close()
            except KeyboardInterrupt:
                interrupted = True
        progress.clear()
    unfinished = [task for task in pending if task.index not in reported]
    if interrupted or stopped:
        _mark_interrupted(unfinished, started)
    print(summary_table(results, missing=len(unfinished)), file=sys.stderr)
    if interrupted:
        print(
            "flexlock: interrupted; rerun the same command to finish the remaining tasks",
            file=sys.stderr,
        )
        return 130
    if unfinished and options.no_wait:
        print(
            f"flexlock: {len(unfinished)} tasks submitted to {name} without waiting",
            file=sys.stderr,
        )
    if stopped:
        print("flexlock: stopped at the first failure (--fail_fast)", file=sys.stderr)
    failed = sum(result.status == "failed" for result in results)
    if failed:
        raise TaskFailedError(f"{failed} of {len(results)} tasks failed (see the table above)")
    return 0
