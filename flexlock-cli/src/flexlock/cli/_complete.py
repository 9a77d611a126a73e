"""TAB completion of a `@clicfg` script: candidates for the word under the cursor.

The shell function from `flexlock completion bash|zsh` runs the script with
`_FLEXLOCK_COMPLETE=1` and the words before the cursor; `CliFunction` then calls
`print_candidates` instead of running, so the script's imports run but `main` does not.
Flags come from the script's parser, config keys after `-o`, experiment names after
`--experiment` from the `--config` files given earlier on the line, executor names
from the installed `flexlock.executors` entry points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flexlock.cli._cmdline import build_parser
from flexlock.cli._config import ConfigTree, leaf_specs, load_yaml_file
from flexlock.core import FlexLockError

__all__ = ["candidates", "print_candidates"]


def candidates(prog: str, config_class: type, words: Sequence[str]) -> list[str]:
    """Return the completions of `words[-1]`, the word under the cursor."""
    current = words[-1] if words else ""
    previous = words[-2] if len(words) > 1 else ""
    if previous in ("-o", "--override"):
        found = [name for name, _ in leaf_specs(config_class)]
    elif previous == "--experiment":
        found = _experiments(config_class, words)
    elif previous == "--executor":
        from flexlock.core import plugin_names

        found = plugin_names("flexlock.executors")
    elif current.startswith("-"):
        parser = build_parser(prog, config_class, None)
        found = [option for action in parser._actions for option in action.option_strings]
    else:
        return []
    return sorted({c for c in found if c.startswith(current)})


def _experiments(config_class: type, words: Sequence[str]) -> list[str]:
    files = [words[i + 1] for i, w in enumerate(words[:-2]) if w == "--config"]
    tree = ConfigTree(config_class)
    names: list[str] = []
    for file in files:
        try:
            data = load_yaml_file(file)
        except (FlexLockError, OSError):
            continue  # a file still being typed: no candidates from it
        if isinstance(data, Mapping):
            names += [
                k
                for k, v in data.items()
                if isinstance(k, str) and isinstance(v, Mapping) and not tree.is_section(k)
            ]
    return names


def print_candidates(prog: str, config_class: type, words: Sequence[str]) -> int:
    """Print one candidate per line for the shell; return the exit code (0)."""
    for candidate in candidates(prog, config_class, words):
        print(candidate)
    return 0
