"""`flexlock debug RUN_DIR`: show the variables a failed task saved, and how to load them."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock debug`."""
    parser = subparsers.add_parser(
        "debug",
        help="show the variables a failed task saved (FLEXLOCK_DEBUG=1)",
        description=(
            "Print the frame, exception and variables that a task failing with "
            "FLEXLOCK_DEBUG=1 saved in RUN_DIR/.flexlock/debug, and the lines that load "
            "them into IPython. --shell opens a Python shell with them loaded instead."
        ),
    )
    parser.add_argument("run", metavar="RUN_DIR", help="run directory (or its run.lock)")
    parser.add_argument("--traceback", action="store_true", help="also print the saved traceback")
    parser.add_argument(
        "--shell",
        action="store_true",
        help="open an interactive shell (IPython if installed) with the variables loaded",
    )
    parser.add_argument(
        "--trust-pickles",
        "--trust_pickles",
        action="store_true",
        dest="trust_pickles",
        help="with --shell, load saved variables that flexlock did not write here (pulled, "
        "copied): unpickling can run arbitrary code, so only for a source you trust",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the saved failure of `args.run`; exit 0, or 2 when nothing was saved."""
    from flexlock.core import read_debug_index

    index = read_debug_index(args.run)
    if args.shell:
        return _shell(args.run, index, trust_pickles=args.trust_pickles)
    print(_describe(args.run, index, with_traceback=args.traceback))
    return 0


def _load_hint(run_dir: str) -> list[str]:
    return [
        "load them in IPython or Jupyter:",
        "  from flexlock.core import load_debug_locals",
        f"  load_debug_locals({run_dir!r})",
        f"or open a shell with them: flexlock debug {run_dir} --shell",
    ]


def _describe(run_dir: str, index: dict[str, Any], *, with_traceback: bool) -> str:
    exception = index.get("exception", {})
    frame = index.get("frame", {})
    variables: dict[str, dict[str, Any]] = index.get("variables", {})
    lines = [
        f"run:       {run_dir}",
        f"failed:    {exception.get('type')}: {exception.get('message')}",
        f"frame:     {frame.get('function')} ({frame.get('file')}:{frame.get('line')})",
        f"saved:     {index.get('created')} (Python {index.get('python')})",
        f"variables: {len(variables)}",
    ]
    if with_traceback and exception.get("traceback"):
        lines += ["", exception["traceback"].rstrip()]
    if variables:
        name_width = max(len(name) for name in variables)
        type_width = max(len(_short_type(entry.get("type", "?"))) for entry in variables.values())
        lines.append("")
        for name, entry in variables.items():
            text = " ".join(str(entry.get("repr", "")).split())  # one line per variable
            if len(text) > 80:
                text = text[:77] + "..."
            note = "" if entry.get("file") else f"  [repr only: {entry.get('unpickled')}]"
            type_name = _short_type(entry.get("type", "?"))
            lines.append(f"  {name:<{name_width}}  {type_name:<{type_width}}  {text}{note}")
    lines += ["", *_load_hint(run_dir)]
    return "\n".join(lines)


def _short_type(qualified: str) -> str:
    return qualified.rsplit(".", 1)[-1]


def _shell(run_dir: str, index: dict[str, Any], *, trust_pickles: bool) -> int:
    """Open IPython (or the stdlib console) with the saved variables as its namespace."""
    from flexlock.core import load_debug_locals

    namespace: dict[str, Any] = {"__name__": "__main__"}
    load_debug_locals(run_dir, namespace, trust_pickles=trust_pickles)
    frame = index.get("frame", {})
    banner = (
        f"flexlock debug: variables of {frame.get('function')} "
        f"({frame.get('file')}:{frame.get('line')}) from {run_dir}"
    )
    try:
        import IPython
    except ImportError:
        import code

        code.interact(banner=banner, local=namespace, exitmsg="")
        return 0
    print(banner)
    IPython.start_ipython(argv=["--no-banner"], user_ns=namespace)
    return 0
