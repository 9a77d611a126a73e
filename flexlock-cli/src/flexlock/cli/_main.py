"""The `flexlock` console command; its subcommands come from `flexlock.commands` entry points.

A registrar is `register(subparsers) -> None`: it adds one sub-parser and sets
`handler=<callable(args) -> int>` as its default. Registrars must import
nothing heavy at module level, since `flexlock --help` loads all of them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flexlock.cli._output import report_errors
from flexlock.core import iter_plugins

__all__ = ["main"]

_DISTRIBUTIONS = ("flexlock", "flexlock-core", "flexlock-cli", "flexlock-mlflow", "flexlock-slurm")


def installed_versions() -> dict[str, str]:
    """Return {distribution: version} for every installed flexlock distribution."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in _DISTRIBUTIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            help="print every installed flexlock distribution and exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        for name, version in installed_versions().items():
            print(f"{name} {version}")
        parser.exit(0)


def register_version(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock version` (same output as `flexlock --version`)."""
    parser = subparsers.add_parser("version", help="print every installed flexlock distribution")

    def handler(args: argparse.Namespace) -> int:
        for name, version in installed_versions().items():
            print(f"{name} {version}")
        return 0

    parser.set_defaults(handler=handler)


def build_parser() -> argparse.ArgumentParser:
    """Build the `flexlock` parser with every installed subcommand."""
    parser = argparse.ArgumentParser(
        prog="flexlock",
        description="Reproducible research runs: inspect, verify and move run sheets (run.lock).",
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for _name, register in iter_plugins("flexlock.commands"):
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `flexlock` command with `argv` (default: sys.argv[1:]); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return report_errors("flexlock", lambda: int(handler(args)))


if __name__ == "__main__":
    sys.exit(main())
