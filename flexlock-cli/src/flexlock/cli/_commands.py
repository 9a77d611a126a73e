"""What `flexlock --help` lists, readable without importing a single command.

Each first-party command's registrar (its `flexlock.commands` entry point), one-line
summary and the distribution that provides it. tests/cli/test_lazy_commands.py checks
this table against every pyproject's entry points and every registrar's `help=`.
Third-party commands are found by `installed_command_names()`, which reads the
`entry_points.txt` files directly: importing `importlib.metadata` costs more (email,
zipfile, csv: 50-90 ms) than the whole `flexlock --help` may.
"""

from __future__ import annotations

import os
import sys

__all__ = ["COMMANDS", "CommandSpec", "installed_command_names", "is_installed", "package_found"]

_GROUP = "[flexlock.commands]"


class CommandSpec:
    """A first-party command: `module:attr` of its registrar, summary, distribution."""

    __slots__ = ("distribution", "summary", "target")

    def __init__(self, target: str, summary: str, distribution: str) -> None:
        self.target = target
        self.summary = summary
        self.distribution = distribution


COMMANDS: dict[str, CommandSpec] = {
    "completion": CommandSpec(
        "flexlock.cli._cmd_completion:register",
        "print a bash or zsh completion script for flexlock",
        "flexlock-cli",
    ),
    "debug": CommandSpec(
        "flexlock.cli._cmd_debug:register",
        "show the variables a failed task saved (FLEXLOCK_DEBUG=1)",
        "flexlock-cli",
    ),
    "diff": CommandSpec(
        "flexlock.cli._cmd_diff:register",
        "explain why two runs differ, or why a run would re-run now",
        "flexlock-cli",
    ),
    "gc": CommandSpec(
        "flexlock.cli._cmd_gc:register",
        "remove old history sheets, snapshot refs no sheet needs and dead cache entries",
        "flexlock-cli",
    ),
    "graph": CommandSpec(
        "flexlock.cli._cmd_graph:register",
        "draw the project's lineage as a graph coloured by status (mermaid, dot, svg, html)",
        "flexlock-cli",
    ),
    "ls": CommandSpec(
        "flexlock.cli._cmd_ls:register", "list the runs under directories", "flexlock-cli"
    ),
    "mlflow": CommandSpec(
        "flexlock.mlflow._cli:register",
        "log run sheets to MLflow and find active runs",
        "flexlock-mlflow",
    ),
    "pull": CommandSpec(
        "flexlock.cli._cmd_transfer:register_pull",
        "restore a pushed run as a working project (code, data, upstream runs), verified",
        "flexlock-cli",
    ),
    "push": CommandSpec(
        "flexlock.cli._cmd_transfer:register_push",
        "publish runs and everything upstream: code as git tags, data with rclone",
        "flexlock-cli",
    ),
    "reproduce": CommandSpec(
        "flexlock.cli._cmd_reproduce:register",
        "re-run a run from its sheet and check it gives the same identity and outputs",
        "flexlock-cli",
    ),
    "show": CommandSpec(
        "flexlock.cli._cmd_show:register",
        "summarise a run: status, times, config, code, data, outputs, lineage",
        "flexlock-cli",
    ),
    "status": CommandSpec(
        "flexlock.cli._cmd_status:register",
        "say which runs are up to date and why the others must run again",
        "flexlock-cli",
    ),
    "unlock": CommandSpec(
        "flexlock.cli._cmd_unlock:register",
        "remove a stale save_dir lock, showing who holds it",
        "flexlock-cli",
    ),
    "verify": CommandSpec(
        "flexlock.cli._cmd_verify:register",
        "check that a run's data, code, upstream runs and outputs still match its sheet",
        "flexlock-cli",
    ),
    "version": CommandSpec(
        "flexlock.cli._main:register_version",
        "print every installed flexlock distribution",
        "flexlock-cli",
    ),
}


def is_installed(spec: CommandSpec) -> bool:
    """Whether the package of `spec`'s registrar is importable (looked up, not imported)."""
    return package_found(spec.target.partition(":")[0].rpartition(".")[0])


def package_found(package: str) -> bool:
    """Whether `flexlock.X` is installed, without importing it.

    Looks for `X/__init__.py` on the `flexlock` namespace package's path, as the import
    system would; `importlib.util.find_spec` costs a few milliseconds of imports more.
    """
    import flexlock

    _, _, name = package.partition(".")
    return any(
        os.path.isfile(os.path.join(directory, name, "__init__.py"))  # noqa: PTH113, PTH118
        for directory in flexlock.__path__
    )


def installed_command_names() -> dict[str, str]:
    """Return {command: distribution} of every `flexlock.commands` entry point on sys.path."""
    found: dict[str, str] = {}
    for directory in sys.path:
        try:
            entries = sorted(os.scandir(directory or "."), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith((".dist-info", ".egg-info")):
                distribution = entry.name.partition("-")[0].replace("_", "-")
                listing = os.path.join(entry.path, "entry_points.txt")  # noqa: PTH118
                for name in _command_entry_points(listing):
                    found.setdefault(name, distribution)
    return found


def _command_entry_points(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as file:  # noqa: PTH123 (pathlib costs an import)
            text = file.read()
    except OSError:
        return []
    names, in_group = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            in_group = line == _GROUP
        elif in_group and "=" in line and not line.startswith(("#", ";")):
            names.append(line.partition("=")[0].strip())
    return names
