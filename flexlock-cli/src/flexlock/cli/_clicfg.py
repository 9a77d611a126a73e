"""`@clicfg`: turn `main(cfg)` into a command-line program driven by a config class.

Merge order (later wins): class defaults < the instance passed to `main(cfg)`
< each `--config FILE` in order (with `--experiment NAME`, the files' top-level
config keys, then their `NAME` subtree) < `-o KEY VALUE` overrides < task
values. Then `${...}` interpolation runs on every string, then every value is
converted by its field's type. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from flexlock.cli._config import (
    MISSING,
    ConfigTree,
    Text,
    is_config_class,
    leaf_specs,
    load_yaml_file,
    type_name,
)
from flexlock.core._errors import ConfigError, FlexLockError

__all__ = ["CliFunction", "clicfg"]

R = TypeVar("R")

_HELP_EPILOG = """\
examples:
  {prog} -o {key} VALUE -o other.key=VALUE     override fields (repeatable)
  {prog} --config conf.yml --experiment NAME   partial configs; take the NAME: subtree
  {prog} --tasks list.txt --task_to {key}       one run per line (--n_jobs N for local cores)
  {prog} --print_config                        show the merged config, marking changes
"""


class _HelpAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, help="show this help, with every config field, and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.print_help()
        print()
        print(_fields_help(parser.config_class))  # type: ignore[attr-defined]
        parser.exit(0)


def _default_text(value: Any) -> str:
    if value is MISSING:
        return "(required)"
    import enum
    from pathlib import PurePath

    if isinstance(value, enum.Enum):
        return repr(value.name)
    if isinstance(value, PurePath):
        return repr(str(value))
    factory = getattr(value, "factory", None)
    if factory is not None:
        try:
            value = factory()
        except Exception:
            return "(factory)"
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _fields_help(config_class: type) -> str:
    rows = [
        (name, type_name(spec.type), _default_text(spec.default), spec.help.replace("\n", " "))
        for name, spec in leaf_specs(config_class)
    ]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(3)]
    lines = [f"config fields ({config_class.__name__}; set with -o KEY VALUE):"]
    for name, kind, default, text in rows:
        line = f"  {name:<{widths[0]}}  {kind:<{widths[1]}}  {default:<{widths[2]}}  {text}"
        lines.append(line.rstrip())
    return "\n".join(lines)


def _flag(parser: argparse._ActionsContainer, name: str, **kwargs: Any) -> None:
    """Add `--name_with_underscores` and `--name-with-dashes` as one option."""
    spellings = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    parser.add_argument(*spellings, dest=name, **kwargs)


def build_parser(prog: str, config_class: type, description: str | None) -> argparse.ArgumentParser:
    """Build the argument parser of a `@clicfg` program (config fields are listed by --help)."""
    first_key = next((name for name, _ in leaf_specs(config_class)), "key")
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_HELP_EPILOG.format(prog=prog, key=first_key),
        allow_abbrev=False,
    )
    parser.config_class = config_class  # type: ignore[attr-defined]
    parser.add_argument("-h", "--help", action=_HelpAction)
    config = parser.add_argument_group("config")
    _flag(
        config,
        "config",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML/JSON file with some or all fields (repeatable, merged in order)",
    )
    _flag(
        config,
        "experiment",
        metavar="NAME",
        help="take the NAME: subtree of the --config files (dotted for deeper ones)",
    )
    config.add_argument(
        "-o",
        "--override",
        dest="override_help",
        metavar="KEY VALUE",
        help="set a field: -o model.lr 0.1 or -o model.lr=0.1 (repeatable)",
    )
    _flag(
        config,
        "print_config",
        action="store_true",
        help="print the merged config as YAML (changes from defaults marked) and exit",
    )
    _flag(
        config,
        "resume",
        action="store_true",
        help="skip the run if its save_dir already holds a succeeded run with this config and "
        "unchanged code, data and upstream runs (task lists always do this; --force reruns)",
    )
    tasks = parser.add_argument_group("task lists")
    _flag(
        tasks,
        "tasks",
        action="append",
        default=[],
        metavar="FILE",
        help="task file: one value per line (with --task_to) or a YAML list of override mappings",
    )
    _flag(tasks, "task_to", metavar="KEY", help="the field each line of a --tasks file sets")
    _flag(
        tasks,
        "sweep",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="grid over values (repeatable: the cartesian product of all sweeps)",
    )
    _flag(tasks, "n_jobs", type=int, metavar="N", help="run tasks on N local cores (joblib)")
    _flag(
        tasks,
        "executor",
        metavar="NAME",
        help="executor plugin: serial, local, slurm or any installed one",
    )
    _flag(tasks, "executor_config", metavar="FILE", help="YAML options of the executor")
    _flag(
        tasks,
        "slurm_config",
        metavar="FILE",
        help="same as --executor slurm --executor_config FILE",
    )
    _flag(
        tasks,
        "no_wait",
        action="store_true",
        help="submit and return without waiting (executors that support it, e.g. slurm)",
    )
    _flag(tasks, "force", action="store_true", help="rerun tasks whose run is already done")
    _flag(tasks, "fail_fast", action="store_true", help="stop at the first failed task")
    return parser


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Take `-o KEY VALUE` / `-o KEY=VALUE` pairs out of `argv`; return (rest, pairs).

    Done before argparse so that VALUE is taken verbatim, even when it starts
    with `-` or contains `=`, `,`, `#` or spaces.
    """
    rest: list[str] = []
    pairs: list[tuple[str, str]] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token in ("-o", "--override"):
            if index + 1 >= len(argv):
                raise ConfigError(f"{token} needs KEY VALUE or KEY=VALUE")
            key = argv[index + 1]
            if "=" in key:
                key, _, value = key.partition("=")
                index += 2
            elif index + 2 < len(argv):
                value = argv[index + 2]
                index += 3
            else:
                raise ConfigError(
                    f"{token} {key}: missing value; use -o {key} VALUE or -o {key}=VALUE"
                )
            pairs.append((key.strip(), value))
            continue
        rest.append(token)
        index += 1
    return rest, pairs


def merge_files(tree: ConfigTree, files: Sequence[str], experiment: str | None) -> None:
    """Merge `--config` files into `tree`, selecting the `experiment` subtree when given."""
    if experiment and not files:
        raise ConfigError(f"--experiment {experiment} needs at least one --config FILE holding it")
    selected: list[tuple[Any, str]] = []
    available: set[str] = set()
    for file in files:
        data = load_yaml_file(file)
        if data is None:
            continue
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{file}: a config file must be a mapping of keys, got {type(data).__name__}"
            )
        if experiment is None:
            tree.merge_mapping(data, file)
            continue
        shared = {k: v for k, v in data.items() if not _is_experiment(tree, k, v)}
        available.update(k for k in data if k not in shared)
        shared_lines = {k: line for k, line in getattr(data, "lines", {}).items() if k in shared}
        tree.merge_mapping(_with_lines(shared, shared_lines), file)
        node: Any = data
        for part in experiment.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            selected.append((node, file))
    if experiment is not None and not selected:
        names = ", ".join(sorted(available)) or "none"
        raise ConfigError(
            f"--experiment {experiment}: no {experiment!r} key in {', '.join(files)} "
            f"(experiments available: {names})"
        )
    for node, file in selected:
        if not isinstance(node, Mapping):
            raise ConfigError(f"{file}: experiment {experiment!r} must be a mapping of config keys")
        tree.merge_mapping(node, file)


def _is_experiment(tree: ConfigTree, key: Any, value: Any) -> bool:
    """A top-level mapping that is not a config section is an experiment."""
    return isinstance(value, Mapping) and not (isinstance(key, str) and tree.is_section(key))


def _with_lines(mapping: dict[Any, Any], lines: dict[Any, int]) -> dict[Any, Any]:
    from flexlock.cli._config import _LineDict

    result = _LineDict(mapping)
    result.lines = lines
    return result


def render_config(
    plain: Mapping[str, Any], defaults: Mapping[str, Any] | None, indent: str = ""
) -> str:
    """Render a plain config as YAML, with `# default: X` after each value that differs."""
    import yaml

    lines = []
    for key, value in plain.items():
        default = defaults.get(key, MISSING) if isinstance(defaults, Mapping) else MISSING
        if isinstance(value, dict) and value:
            lines.append(f"{indent}{key}:")
            lines.append(
                render_config(
                    value, default if isinstance(default, Mapping) else None, indent + "  "
                )
            )
            continue
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True)
        text = text.removesuffix("\n").removesuffix("\n...").strip()
        line = f"{indent}{key}: {text}"
        if defaults is not None and default != value:
            shown = (
                "(required)"
                if default is MISSING
                else yaml.safe_dump(default, default_flow_style=True, width=10_000)
                .removesuffix("\n")
                .removesuffix("\n...")
                .strip()
            )
            line += f"  # changed, default: {shown}"
        lines.append(line)
    return "\n".join(lines)


def default_plain(config_class: type) -> dict[str, Any] | None:
    """Return the class defaults as a plain config (resolved), or None if they do not build."""
    from flexlock.cli._runner import resolve
    from flexlock.core._registry import clear

    try:
        return resolve(ConfigTree(config_class))[1]
    except FlexLockError:
        return None
    finally:
        clear()


_script_repo_cache: dict[str, tuple[str, ...]] = {}


def script_repos(function: Any) -> tuple[str, ...]:
    """Return the git checkout holding `function`'s source file (one-line warning if none)."""
    import subprocess

    code = getattr(function, "__code__", None)
    file = code.co_filename if code else None
    directory = (
        str(Path(file).resolve().parent) if file and Path(file).exists() else str(Path.cwd())
    )
    if directory in _script_repo_cache:
        return _script_repo_cache[directory]
    try:
        root = subprocess.run(
            ["git", "-C", directory, "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        repos: tuple[str, ...] = (os.path.relpath(root),)
    except (OSError, subprocess.CalledProcessError):
        print(
            f"flexlock: warning: {directory} is not in a git repository; the code is not recorded",
            file=sys.stderr,
        )
        repos = ()
    _script_repo_cache[directory] = repos
    return repos


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
            code = self.cli(sys.argv[1:], config=config)
            if code:
                raise SystemExit(code)
            return None
        from flexlock.cli._config import to_plain
        from flexlock.cli._runner import build_resolved, execute
        from flexlock.core._registry import clear

        clear()
        instance = build_resolved(self.tree(config))
        save_dir = _save_dir_of(instance)
        plain = to_plain(instance) if save_dir else {}
        repos = script_repos(self.function) if save_dir else None
        return execute(self.function, instance, plain, save_dir, repos=repos, capture=False)  # type: ignore[no-any-return]

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
        try:
            return self._cli(list(argv or []), config)
        except FlexLockError as error:
            from flexlock.core import traceback_enabled

            if traceback_enabled():  # FLEXLOCK_TRACEBACK: the exit code stays the error's
                import traceback

                traceback.print_exception(error)
            print(f"{self._prog()}: error: {error}", file=sys.stderr)
            return error.exit_code
        except KeyboardInterrupt:
            print(f"{self._prog()}: interrupted", file=sys.stderr)
            return 130

    def _prog(self) -> str:
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if self._is_script_entry() and main_file:
            return Path(main_file).name
        return self.function.__name__

    def _cli(self, argv: list[str], config: Any) -> int:
        rest, overrides = split_overrides(argv)
        parser = build_parser(self._prog(), self.config_class, _first_line(self.function.__doc__))
        try:
            args = parser.parse_args(rest)
        except SystemExit as exit_:
            return int(exit_.code or 0)
        tree = self.tree(config)
        merge_files(tree, args.config, args.experiment)
        for key, value in overrides:
            tree.set(key, Text(value), f"-o {key}")
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
            )
            return run_task_list(self, tree, options)
        for flag in ("n_jobs", "executor", "executor_config", "slurm_config"):
            if getattr(args, flag) is not None:
                raise ConfigError(
                    f"--{flag} applies to task lists; add --tasks FILE or --sweep KEY=V1,V2"
                )
        return self._run_single(tree, print_config=args.print_config, resume=args.resume)

    def _run_single(self, tree: ConfigTree, *, print_config: bool, resume: bool = False) -> int:
        from flexlock.cli._config import to_plain
        from flexlock.cli._runner import build_resolved, execute
        from flexlock.core._registry import clear

        clear()
        instance = build_resolved(tree)
        if print_config:
            plain = to_plain(instance)
            print(render_config(plain, default_plain(self.config_class)))
            return 0
        save_dir = _save_dir_of(instance)
        # The plain (cattrs) form is only needed for the sheet: a run without one skips it.
        plain = to_plain(instance) if save_dir else {}
        if resume and save_dir:
            from flexlock.core import rerun_reason

            reason = rerun_reason(save_dir, config=instance)
            if reason is None:
                print(
                    f"{self._prog()}: {save_dir} is up to date, skipped (drop --resume to rerun)",
                    file=sys.stderr,
                )
                return 0
            print(f"{self._prog()}: running {save_dir}: {reason}", file=sys.stderr)
        repos = script_repos(self.function) if save_dir else None
        try:
            execute(self.function, instance, plain, save_dir, repos=repos, capture=False)
        except FlexLockError:
            raise
        except Exception as error:
            import traceback

            from flexlock.cli._runner import save_locals
            from flexlock.core._debug import debug_exception

            traceback.print_exc()
            # The failure ends here as exit code 1, so an outer @unsafe_debug never sees it:
            # inject/pdb (FLEXLOCK_DEBUG) and keep the frame's variables next to the sheet now.
            save_locals(error, save_dir)
            debug_exception(error)
            sheet = f"; run sheet: {Path(save_dir) / 'run.lock'}" if save_dir else ""
            print(f"{self._prog()}: the run failed{sheet}", file=sys.stderr)
            return 1
        return 0


def _save_dir_of(config: Any) -> str | None:
    """Return the config's `save_dir` as a string, or None when it has none (or it is empty)."""
    save_dir = getattr(config, "save_dir", None)
    return os.fspath(save_dir) or None if isinstance(save_dir, str | os.PathLike) else None


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
