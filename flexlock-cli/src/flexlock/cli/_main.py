"""The `flexlock` console command; its subcommands come from `flexlock.commands` entry points.

A registrar is `register(subparsers) -> None`: it adds one sub-parser and sets
`handler=<callable(args) -> int>` as its default. `flexlock CMD` imports only CMD's
registrar; `flexlock --help` imports none, listing first-party commands from the static
table in `_commands` and third-party ones from their entry points, unloaded.
"""

from __future__ import annotations

import argparse
import sys

from flexlock.cli._commands import COMMANDS, installed_command_names, is_installed, package_found

TYPE_CHECKING = False  # not from typing: `flexlock --help` must not pay for importing it
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    _Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
    _Registrar = Callable[[Any], None]

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


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter at the terminal's width, found without argparse's `import shutil`.

    shutil (and the compression modules it imports) would be the largest import of
    `flexlock --help`; `os.get_terminal_size` is what shutil calls underneath.
    """
    import os

    try:
        width = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        try:
            width = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 80
        except (OSError, ValueError):
            width = 80
    return argparse.RawDescriptionHelpFormatter(prog, width=max(width - 2, 20))


def _root_parser(epilog: str | None = None) -> tuple[argparse.ArgumentParser, _Subparsers]:
    parser = argparse.ArgumentParser(
        prog="flexlock",
        description="Reproducible research runs: inspect, verify and move run sheets (run.lock).",
        epilog=epilog,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    return parser, subparsers


def build_parser() -> argparse.ArgumentParser:
    """Build the `flexlock` parser with every installed subcommand loaded (for references)."""
    from flexlock.core import iter_plugins

    parser, subparsers = _root_parser()
    for _name, register in iter_plugins("flexlock.commands"):
        register(subparsers)
    return parser


def _missing_plugins_epilog() -> str | None:
    missing = [
        f"  {name:<10} {spec.summary}: pip install {spec.distribution}"
        for name, spec in sorted(COMMANDS.items())
        if not is_installed(spec)
    ]
    if not package_found("flexlock.slurm"):
        missing.append(
            "  executor slurm (task lists as Slurm job arrays): pip install flexlock-slurm"
        )
    if not missing:
        return None
    return "not installed:\n" + "\n".join(missing)


def _listing_parser() -> argparse.ArgumentParser:
    """The parser for `flexlock` / `flexlock --help`: every installed command, none imported."""
    parser, subparsers = _root_parser(_missing_plugins_epilog())
    third_party = installed_command_names()
    names = {n: s.summary for n, s in COMMANDS.items() if is_installed(s)}
    names |= {n: f"(from {d})" for n, d in third_party.items() if n not in COMMANDS}
    for name, summary in sorted(names.items()):
        subparsers.add_parser(name, help=summary, add_help=False)
    return parser


def _load_registrar(name: str) -> _Registrar | None:
    spec = COMMANDS.get(name)
    if spec is not None and is_installed(spec):
        from importlib import import_module

        module, _, attr = spec.target.partition(":")
        registrar: _Registrar = getattr(import_module(module), attr)
        return registrar
    if name in installed_command_names():
        from flexlock.core import load_plugin

        third_party: _Registrar = load_plugin("flexlock.commands", name)
        return third_party
    return None


def _unknown_command(parser: argparse.ArgumentParser, name: str) -> None:
    spec = COMMANDS.get(name)
    if spec is not None:
        parser.error(
            f"command {name!r} is provided by {spec.distribution}, which is not installed: "
            f"pip install {spec.distribution}"
        )
    import difflib

    known = sorted(
        {*(n for n, s in COMMANDS.items() if is_installed(s)), *installed_command_names()}
    )
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (commands: {', '.join(known)})"
    parser.error(f"unknown command {name!r}{hint}")


def _command_name(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
        if arg in ("-h", "--help", "--version"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `flexlock` command with `argv` (default: sys.argv[1:]); return the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    name = _command_name(arguments)
    if name is None:
        listing = _listing_parser()
        listing.parse_args(arguments)  # --help and --version exit here
        listing.print_help()
        return 2
    parser, subparsers = _root_parser()
    register = _load_registrar(name)
    if register is None:
        _unknown_command(parser, name)
    else:
        register(subparsers)
    args = parser.parse_args(arguments)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    from flexlock.cli._output import report_errors

    return report_errors("flexlock", lambda: int(handler(args)))


if __name__ == "__main__":
    sys.exit(main())
