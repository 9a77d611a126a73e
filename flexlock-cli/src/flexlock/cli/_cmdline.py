"""The command line of a `@clicfg` program: its parser and help, `-o` pairs, `--config` files.

Only what argv says lives here; what the config then becomes is `_render`'s, and
running it is `_runner`'s and `_tasks`'s.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from typing import Any

from flexlock.cli._config import ConfigTree, leaf_specs, load_yaml_file, with_lines
from flexlock.cli._render import fields_help
from flexlock.cli._yaml_text import yaml_kind
from flexlock.core import ConfigError

__all__ = ["build_parser", "merge_files", "split_overrides", "unknown_arguments", "value_flags"]

_HELP_EPILOG = """\
examples:
  {prog} {key}=VALUE other.key=VALUE        override fields (same as -o {key} VALUE)
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
        print(fields_help(parser.config_class))  # type: ignore[attr-defined]
        parser.exit(0)


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
    code = parser.add_argument_group("code recorded in the run sheet")
    _flag(
        code,
        "code_include",
        action="append",
        default=[],
        metavar="PATHSPEC",
        help="record only these paths of the repo (git pathspec; repeatable; after "
        "[tool.flexlock.code] include of its pyproject.toml)",
    )
    _flag(
        code,
        "code_exclude",
        action="append",
        default=[],
        metavar="PATHSPEC",
        help="leave these paths out of the recorded code (e.g. 'notes/', '*.ipynb'; repeatable)",
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
    _flag(
        tasks,
        "tee",
        action="store_true",
        help="show each task's output as it runs, as well as writing its stdout.log/stderr.log",
    )
    _flag(tasks, "force", action="store_true", help="rerun tasks whose run is already done")
    _flag(tasks, "fail_fast", action="store_true", help="stop at the first failed task")
    return parser


#: A Hydra-style positional override: `model.lr=0.1` (a dotted key, then `=`).
_POSITIONAL = re.compile(r"[A-Za-z_][\w-]*(\.[A-Za-z_0-9][\w-]*)*=")


def value_flags(parser: argparse.ArgumentParser) -> frozenset[str]:
    """Return the option strings of `parser` that take a value (`--config FILE`, ...)."""
    return frozenset(
        spelling
        for action in parser._actions  # argparse has no public listing of its actions
        if action.nargs != 0 and action.dest != "override_help"
        for spelling in action.option_strings
    )


def split_overrides(
    argv: Sequence[str], flags_with_value: frozenset[str] = frozenset()
) -> tuple[list[str], list[tuple[str, str]]]:
    """Take `-o KEY VALUE` / `-o KEY=VALUE` / `KEY=VALUE` out of `argv`; return (rest, pairs).

    Done before argparse so that VALUE is taken verbatim, even when it starts
    with `-` or contains `=`, `,`, `#` or spaces. A bare `KEY=VALUE` (Hydra's
    spelling) is an override unless it is the value of a flag in `flags_with_value`
    (`--sweep lr=1,2` stays the sweep's).
    """
    rest: list[str] = []
    pairs: list[tuple[str, str]] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        after_flag = bool(rest) and rest[-1] in flags_with_value
        if not after_flag and _POSITIONAL.match(token):
            key, _, value = token.partition("=")
            pairs.append((key, value))
            index += 1
            continue
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


def unknown_arguments(parser: argparse.ArgumentParser, unknown: Sequence[str]) -> ConfigError:
    """Return the usage error for arguments argparse did not know, with the likely spelling."""
    token = unknown[0]
    flag = token.partition("=")[0]
    fields = [name for name, _ in leaf_specs(parser.config_class)]  # type: ignore[attr-defined]
    if flag.startswith("-"):
        name = flag.lstrip("-")
        if name in fields or name.replace("-", "_") in fields:
            key = name if name in fields else name.replace("-", "_")
            return ConfigError(
                f"unrecognized argument {token}: config fields are set with "
                f"{key}=VALUE or -o {key} VALUE"
            )
        known = [s for action in parser._actions for s in action.option_strings]
        import difflib  # for a misspelt flag only: it compiles a regex on import

        close = difflib.get_close_matches(flag, known, n=2, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else f"; see {parser.prog} --help"
        return ConfigError(f"unrecognized argument {token}{hint}")
    return ConfigError(
        f"unrecognized argument {token!r}: set a config field with KEY=VALUE or -o KEY VALUE "
        f"(see {parser.prog} --help)"
    )


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
                f"{file}: a config file must be a mapping of keys, got a {yaml_kind(data)}"
            )
        if experiment is None:
            tree.merge_mapping(data, file)
            continue
        shared = {k: v for k, v in data.items() if not _is_experiment(tree, k, v)}
        available.update(k for k in data if k not in shared)
        shared_lines = {k: line for k, line in getattr(data, "lines", {}).items() if k in shared}
        tree.merge_mapping(with_lines(shared, shared_lines), file)
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
