"""`@clicfg`: turn `main(cfg)` into a command-line program driven by a config class.

Merge order (later wins): class defaults < the instance passed to `main(cfg)`
< each `--config FILE` in order (with `--experiment NAME`, the files' top-level
config keys, then their `NAME` subtree) < `-o KEY VALUE` overrides < task
values. Then `${...}` interpolation runs on every string, then every value is
converted by its field's type. See docs/cli.md.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from flexlock.cli._cmdline import (
    build_parser,
    merge_files,
    split_overrides,
    unknown_arguments,
    value_flags,
)
from flexlock.cli._config import ConfigTree, Text, is_config_class, to_plain
from flexlock.cli._render import build_resolved, default_plain, render_config
from flexlock.cli._resolvers import invocation_time
from flexlock.core import ConfigError, FlexLockError, TaskFailedError, clear_registered

if TYPE_CHECKING:  # the runner (socket, hashing, sheets) loads only to run: not for --help
    from flexlock.cli._runner import CodeFlags

__all__ = ["CliFunction", "clicfg"]

R = TypeVar("R")


class CliFunction(Generic[R]):
    """A `main(cfg)` function made into a CLI by `@clicfg`.

    Call it as `main()` or `main(cfg)` from Python (argv is never read), or let
    `main(Config())` under `if __name__ == "__main__":` read the command line;
    `main.cli(argv=[...])` runs a command line and returns the exit code.
    """

    def __init__(self, function: Callable[[Any], R], config_class: type | None) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        self.config_class = config_class or _infer_config_class(function)

    def __repr__(self) -> str:
        return f"<clicfg {self.function.__module__}.{self.function.__qualname__}>"

    def __get__(self, instance: Any, owner: Any) -> Any:
        return self if instance is None else functools.partial(self, instance)

    def __call__(self, config: Any = None) -> R | None:
        """Run with `config` (default: class defaults); from the script's main block, read argv."""
        if self._is_script_entry():
            if "_FLEXLOCK_COMPLETE" in os.environ:  # TAB in a shell (flexlock completion)
                from flexlock.cli._complete import print_candidates

                raise SystemExit(print_candidates(self._prog(), self.config_class, sys.argv[1:]))
            code = self.cli(sys.argv[1:], config=config)
            if code:
                raise SystemExit(code)
            return None
        from flexlock.cli._runner import run_config

        clear_registered()
        with invocation_time():
            return run_config(self.function, build_resolved(self.tree(config)))

    def tree(self, config: Any = None) -> ConfigTree:
        """Return the tree of the class defaults merged with `config` (instance or mapping)."""
        tree = ConfigTree(self.config_class)
        if isinstance(config, Mapping):
            tree.merge_mapping(config, "main(cfg)")
        elif config is not None:
            if not isinstance(config, self.config_class):
                raise ConfigError(
                    f"main() got a {type(config).__name__}; expected a {self.config_class.__name__}"
                )
            tree.merge_instance(config)
        return tree

    def _is_script_entry(self) -> bool:
        """Whether this call comes from the script run as a program (so argv is its own)."""
        if self.function.__module__ != "__main__":
            return False
        code = getattr(self.function, "__code__", None)
        if code is None:
            return False
        # `python script.py` and `python -m script` set __main__.__file__; runners such as
        # `python -m cProfile script.py` or pdb keep their own __main__ but set argv[0].
        # Notebooks, `python -c` and interactive sessions match neither.
        candidates = [
            getattr(sys.modules.get("__main__"), "__file__", None),
            sys.argv[0] if sys.argv else None,
        ]
        try:
            source = Path(code.co_filename).resolve()
            return any(c and Path(c).resolve() == source for c in candidates)
        except OSError:
            return False

    def cli(self, argv: Sequence[str] | None = None, *, config: Any = None) -> int:
        """Run the command line `argv` (default: none, i.e. the defaults); return the exit code.

        Never raises for usage or config errors (exit 2) or a failing run (exit 1);
        messages go to stderr.
        """
        from flexlock.cli._output import report_errors

        with invocation_time():
            return report_errors(self._prog(), lambda: self._cli(list(argv or []), config))

    def _prog(self) -> str:
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if self._is_script_entry() and main_file:
            return Path(main_file).name
        return self.function.__name__

    def _cli(self, argv: list[str], config: Any) -> int:
        parser = build_parser(self._prog(), self.config_class, _first_line(self.function.__doc__))
        rest, overrides = split_overrides(argv, value_flags(parser))
        try:
            args, unknown = parser.parse_known_args(rest)
        except SystemExit as exit_:
            return int(exit_.code or 0)
        if unknown:
            raise unknown_arguments(parser, unknown)
        tree = self.tree(config)
        merge_files(tree, args.config, args.experiment)
        for key, value in overrides:
            tree.set(key, Text(value), f"-o {key}")
        from flexlock.cli._runner import CodeFlags

        code = CodeFlags(tuple(args.code_include), tuple(args.code_exclude))
        if args.tasks or args.sweep or args.task_to:
            from flexlock.cli._tasks import TaskOptions, run_task_list

            options = TaskOptions(
                files=tuple(args.tasks),
                task_to=args.task_to,
                sweeps=tuple(args.sweep),
                n_jobs=args.n_jobs,
                executor=args.executor,
                executor_config=args.executor_config,
                slurm_config=args.slurm_config,
                no_wait=args.no_wait,
                force=args.force,
                fail_fast=args.fail_fast,
                print_config=args.print_config,
                code=code,
                tee=args.tee,
            )
            return run_task_list(self, tree, options)
        for flag in ("n_jobs", "executor", "executor_config", "slurm_config", "tee"):
            if getattr(args, flag) not in (None, False):
                raise ConfigError(
                    f"--{flag} applies to task lists; add --tasks FILE or --sweep KEY=V1,V2"
                )
        return self._run_single(tree, print_config=args.print_config, resume=args.resume, code=code)

    def _run_single(
        self,
        tree: ConfigTree,
        *,
        print_config: bool,
        resume: bool = False,
        code: CodeFlags | None = None,
    ) -> int:
        from flexlock.cli._runner import (
            CodeFlags,
            print_user_traceback,
            run_config,
            save_dir_of,
            save_locals,
        )

        clear_registered()
        instance = build_resolved(tree)
        if print_config:
            plain = to_plain(instance)
            print(render_config(plain, default_plain(self.config_class)))
            return 0
        save_dir = save_dir_of(instance)
        if resume and save_dir:
            from flexlock.core import rerun_reason

            reason = rerun_reason(save_dir, config=instance, **(code or CodeFlags()).options())
            if reason is None:
                print(
                    f"{self._prog()}: {save_dir} is up to date, skipped (drop --resume to rerun)",
                    file=sys.stderr,
                )
                return 0
            print(f"{self._prog()}: running {save_dir}: {reason}", file=sys.stderr)
        if save_dir:
            self._note_replaced(save_dir)
        try:
            run_config(self.function, instance, code or CodeFlags(), log=True)
        except FlexLockError:
            raise
        except Exception as error:
            from flexlock.core import debug_exception

            if not save_dir:  # with one, the run log already printed it (and kept it)
                from flexlock.core import RunOptions

                redactor = RunOptions().redactor
                secrets = redactor.secret_values(to_plain(instance))
                print_user_traceback(error, redact=lambda text: redactor.scrub(text, secrets))
            # The failure ends here as exit code 1, so an outer @unsafe_debug never sees it:
            # inject/pdb (FLEXLOCK_DEBUG) and keep the frame's variables next to the sheet now.
            save_locals(error, save_dir)
            debug_exception(error)
            lock = Path(save_dir) / "run.lock" if save_dir else None
            sheet = f"; run sheet: {lock}" if lock is not None and lock.is_file() else ""
            raise TaskFailedError(f"the run failed{sheet}") from None  # exit 1
        return 0

    def _note_replaced(self, save_dir: str) -> None:
        """Say that this run replaces the one in `save_dir`, and where its sheet is kept."""
        from flexlock.core import read_summary

        lock = Path(save_dir) / "run.lock"
        history = Path(save_dir) / ".flexlock" / "history"  # the layout of docs/run-sheet.md
        if not lock.is_file():
            return
        previous = read_summary(lock)
        when = previous.created.replace("T", " ").removesuffix("Z")
        if previous.status == "invalid" or not when:  # nothing sound to name: say so
            what = "an unreadable run sheet"
        else:
            what = f"a {previous.status} run of {when}"
        print(
            f"{self._prog()}: {save_dir} holds {what}; this run "
            f"replaces it, its sheet is kept in {history}/ (a folder per run: "
            "save_dir with ${now:...}, see docs/cli.md)",
            file=sys.stderr,
        )


def _first_line(doc: str | None) -> str | None:
    return doc.strip().splitlines()[0] if doc and doc.strip() else None


def _infer_config_class(function: Callable[..., Any]) -> type:
    import inspect
    import typing

    try:
        hints = typing.get_type_hints(function)
    except Exception:
        hints = {}
    parameters = list(inspect.signature(function).parameters)
    candidate = hints.get(parameters[0]) if parameters else None
    if candidate is not None and is_config_class(candidate):
        return candidate  # type: ignore[no-any-return]
    raise ConfigError(
        f"@clicfg on {function.__qualname__}: pass config_class=YourConfig or annotate the "
        "first parameter with an attrs class, dataclass or class with class attributes"
    )


@overload
def clicfg(function: Callable[[Any], R], *, config_class: type | None = None) -> CliFunction[R]: ...
@overload
def clicfg(
    function: None = None, *, config_class: type | None = None
) -> Callable[[Callable[[Any], R]], CliFunction[R]]: ...


def clicfg(
    function: Callable[[Any], R] | None = None, *, config_class: type | None = None
) -> CliFunction[R] | Callable[[Callable[[Any], R]], CliFunction[R]]:
    """Make `main(cfg)` a command-line program configured by `config_class`.

    Use as `@clicfg(config_class=Config)` or bare `@clicfg` when the first
    parameter is annotated with the config class.
    """
    if function is not None:
        return CliFunction(function, config_class)

    def decorate(inner: Callable[[Any], R]) -> CliFunction[R]:
        return CliFunction(inner, config_class)

    return decorate
