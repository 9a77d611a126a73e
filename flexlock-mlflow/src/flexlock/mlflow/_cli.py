"""`flexlock mlflow ...`: log many run dirs with a logging function, list active runs.

Registered through the `flexlock.commands` entry point; imports nothing heavy
at module level because `flexlock --help` loads every registrar.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flexlock.core import ConfigError, FlexLockError, TaskFailedError, TransferError

__all__ = ["register"]

# `script.py:function` or `package.module:function`; a run dir is never taken for one
# if it exists as a directory.
_FUNCTION_SPEC = re.compile(r"^(?P<target>[^:]+):(?P<name>[A-Za-z_]\w*)$")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock mlflow` with its `log`, `active` and `migrate` subcommands."""
    parser = subparsers.add_parser(
        "mlflow",
        help="log run sheets to MLflow and find active runs",
        description="Log run sheets to MLflow under their logical run id (the save dir).",
    )
    commands = parser.add_subparsers(title="mlflow commands", metavar="COMMAND")

    log = commands.add_parser(
        "log",
        help="run a logging function over many run dirs",
        description=(
            "Call FUNCTION(save_dir) for every run dir, continuing past failures. FUNCTION is "
            "`script.py:name` or `package.module:name` and usually opens `mlflow_lock(save_dir)`. "
            "Without FUNCTION, each run sheet is logged as it is."
        ),
    )
    log.add_argument(
        "items",
        nargs="+",
        metavar="[FUNCTION] RUN_DIR",
        help="optional script.py:function, then run dirs (globs allowed)",
    )
    log.add_argument("--experiment", help="experiment name (default: MLflow's current experiment)")
    log.add_argument(
        "--tracking-uri", "--tracking_uri", dest="tracking_uri", help="sets MLFLOW_TRACKING_URI"
    )
    log.add_argument(
        "--any-status",
        "--any_status",
        dest="any_status",
        action="store_true",
        help="without FUNCTION: also log sheets that did not succeed",
    )
    log.add_argument(
        "--delete-superseded",
        "--delete_superseded",
        dest="delete_superseded",
        action="store_true",
        help="soft-delete the runs each new log deprecates (restorable), so MLflow's default "
        "view shows one run per save dir",
    )
    log.add_argument(
        "--changed-only",
        "--changed_only",
        dest="changed_only",
        action="store_true",
        help="skip a run dir whose run.lock is unchanged since its active MLflow run",
    )
    log.add_argument(
        "--fail-fast",
        "--fail_fast",
        dest="fail_fast",
        action="store_true",
        help="stop at the first failure",
    )
    log.set_defaults(handler=_log_handler)

    active = commands.add_parser("active", help="list the active run of every logical run")
    active.add_argument(
        "--experiment", help="experiment name (default: MLflow's current experiment)"
    )
    active.add_argument("--filter", help="extra MLflow filter, e.g. \"params.lr = '0.1'\"")
    active.add_argument(
        "--tracking-uri", "--tracking_uri", dest="tracking_uri", help="sets MLFLOW_TRACKING_URI"
    )
    active.set_defaults(handler=_active_handler)

    migrate = commands.add_parser(
        "migrate",
        help="give runs logged up to 0.11 the logical_status tag (for filters typed by hand)",
    )
    migrate.add_argument(
        "--experiment", help="experiment name (default: MLflow's current experiment)"
    )
    migrate.add_argument(
        "--tracking-uri", "--tracking_uri", dest="tracking_uri", help="sets MLFLOW_TRACKING_URI"
    )
    migrate.set_defaults(handler=_migrate_handler)

    def no_command(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=no_command)


def load_function(spec: str) -> Callable[..., Any]:
    """Import the function named by `script.py:name` or `package.module:name`.

    Raises:
        ConfigError: malformed spec, missing file or module, or no such callable.
    """
    match = _FUNCTION_SPEC.match(spec)
    if match is None:
        raise ConfigError(f"{spec!r}: expected script.py:function or package.module:function")
    target, name = match["target"], match["name"]
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target).resolve()
        if not path.is_file():
            raise ConfigError(f"{spec}: no such script {path}")
        # Like `python script.py`: the script's folder is importable, so it can import siblings.
        sys.path.insert(0, str(path.parent))
        module_spec = importlib.util.spec_from_file_location(f"_flexlock_log_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"{spec}: cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as error:
            raise ConfigError(f"{spec}: cannot import module {target!r}: {error}") from None
    function = getattr(module, name, None)
    if not callable(function):
        # Only what the module defines itself, not what it imported.
        available = sorted(
            n
            for n, v in vars(module).items()
            if callable(v)
            and not n.startswith("_")
            and getattr(v, "__module__", None) == module.__name__
        )
        raise ConfigError(
            f"{spec}: no function {name!r} in {target} (found: {', '.join(available) or 'none'})"
        )
    return function  # type: ignore[no-any-return]


def _split_items(items: Sequence[str]) -> tuple[str | None, list[str]]:
    first = items[0]
    if _FUNCTION_SPEC.match(first) and not Path(first).is_dir():
        return first, list(items[1:])
    return None, list(items)


def _expand(patterns: Sequence[str]) -> list[str]:
    """Expand globs the shell left alone (quoted, or on Windows); keep the rest as given."""
    dirs: list[str] = []
    for pattern in patterns:
        # glob.glob, not Path.glob: patterns may be absolute.
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else []  # noqa: PTH207
        dirs.extend(matches or [pattern])
    return dirs


def _log_sheet_only(require_success: bool, experiment: str | None) -> Callable[[str], None]:
    def log_sheet(save_dir: str) -> None:
        from flexlock.mlflow._lock import mlflow_lock

        with mlflow_lock(save_dir, experiment=experiment, require_success=require_success):
            pass

    return log_sheet


def _expected(error: BaseException) -> bool:
    """Whether `error` is flexlock's or MLflow's own (a message, not a bug to trace)."""
    return isinstance(error, FlexLockError) or type(error).__module__.startswith("mlflow.")


def _log_handler(args: argparse.Namespace) -> int:
    if args.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    spec, patterns = _split_items(args.items)
    dirs = _expand(patterns)
    if not dirs:
        raise ConfigError("flexlock mlflow log: no run dirs given")
    if spec is None:
        function = _log_sheet_only(not args.any_status, args.experiment)
    else:
        if args.experiment:
            os.environ["MLFLOW_EXPERIMENT_NAME"] = args.experiment
        function = load_function(spec)
    from flexlock.mlflow._lock import DELETE_SUPERSEDED_DEFAULT
    from flexlock.mlflow._query import _is_unreachable

    failures: list[tuple[str, str]] = []
    attempted = unchanged = 0
    unreachable = False
    token = DELETE_SUPERSEDED_DEFAULT.set(args.delete_superseded)
    try:
        for save_dir in dirs:
            attempted += 1
            try:
                if args.changed_only and _unchanged(save_dir, args.experiment):
                    unchanged += 1
                    print(f"unchanged {save_dir}")
                    continue
                function(save_dir)
            except Exception as error:
                # Every further dir would wait for the same server: stop at the first.
                unreachable = _is_unreachable(error)
                if _expected(error):  # input or store problem: one line is enough
                    failures.append((save_dir, str(error)))
                    print(f"FAILED {save_dir}: {error}", file=sys.stderr)
                else:  # a bug in the logging function: show where
                    failures.append((save_dir, f"{type(error).__name__}: {error}"))
                    print(f"FAILED {save_dir}:", file=sys.stderr)
                    traceback.print_exc(file=sys.stderr)
            else:
                print(f"logged {save_dir}")
            if unreachable or (failures and args.fail_fast):
                break
    finally:
        DELETE_SUPERSEDED_DEFAULT.reset(token)
    skipped = len(dirs) - attempted
    why = "tracking server unreachable" if unreachable else "--fail-fast"
    logged = attempted - len(failures) - unchanged
    summary = f"{logged}/{len(dirs)} logged, {len(failures)} failed"
    if args.changed_only:
        summary += f", {unchanged} unchanged"
    print(summary + (f", {skipped} not tried ({why})" if skipped else ""))
    for save_dir, message in failures:
        print(f"  {save_dir}: {message.splitlines()[0] if message else ''}")
    if unreachable:  # 4, a transfer error (docs/cli.md): worth a retry once the server is up
        return TransferError.exit_code
    # Exit 1 like a failed task (DESIGN.md §8): the user's logging function or input failed.
    return TaskFailedError.exit_code if failures else 0


def _unchanged(save_dir: str, experiment: str | None) -> bool:
    """Whether the active MLflow run of `save_dir` logged the run.lock it holds now."""
    from flexlock.mlflow._query import active_run_for, fail_fast
    from flexlock.mlflow._sheet import ACTIVE, SHEET_DIGEST_TAG, log_state, sheet_digest

    digest = sheet_digest(save_dir)
    if digest is None:
        return False
    with fail_fast():
        try:
            run = active_run_for(save_dir, experiment)
        except ConfigError:  # the experiment does not exist yet: nothing was logged
            return False
    return (
        run is not None
        and log_state(run.data.tags) == ACTIVE
        and run.data.tags.get(SHEET_DIGEST_TAG) == digest
    )


def _active_handler(args: argparse.Namespace) -> int:
    if args.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    from flexlock.mlflow._query import active_runs, fail_fast
    from flexlock.mlflow._sheet import LOGICAL_RUN_ID_TAG

    try:
        with fail_fast():
            runs = active_runs(experiment=args.experiment, filter=args.filter)
    except Exception as error:
        if isinstance(error, FlexLockError) or not _expected(error):
            raise
        print(f"flexlock: error: {error}", file=sys.stderr)
        return 1
    for run in runs:
        print(f"{run.info.run_id}  {run.data.tags.get(LOGICAL_RUN_ID_TAG, '?')}")
    print(f"{len(runs)} active run(s)", file=sys.stderr)
    return 0


def _migrate_handler(args: argparse.Namespace) -> int:
    if args.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    from flexlock.mlflow._query import fail_fast, migrate_status_tags
    from flexlock.mlflow._sheet import STATUS_TAG

    try:
        with fail_fast():
            tagged = migrate_status_tags(args.experiment)
    except Exception as error:
        if isinstance(error, FlexLockError) or not _expected(error):
            raise
        print(f"flexlock: error: {error}", file=sys.stderr)
        return 1
    print(f"tagged {tagged} run(s) logged before the rename with {STATUS_TAG}")
    return 0
