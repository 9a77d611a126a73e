"""Write docs/cli-reference.md from the installed `flexlock` command's own help.

python scripts/gen_cli_reference.py          # rewrite the page
python scripts/gen_cli_reference.py --check  # exit 1 if the page is stale (used by the tests)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cli-reference.md"


def _help(argv: list[str]) -> str:
    from flexlock.cli._main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([*argv, "--help"])
    return out.getvalue().rstrip()


def render() -> str:
    """Return the reference page for every installed subcommand."""
    from flexlock.cli._main import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps by terminal width: fix it
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = [
        "# `flexlock` command reference",
        "",
        "Generated from the code by `python scripts/gen_cli_reference.py`; a test fails when this",
        "page and the command disagree. `@clicfg` scripts have their own flags: "
        "see [cli.md](cli.md).",
        "",
        "```text",
        _help([]),
        "```",
    ]
    for name in sorted(subparsers.choices):
        parts += ["", f"## flexlock {name}", "", "```text", _help([name]), "```"]
    return "\n".join(parts) + "\n"


def main() -> int:
    check = "--check" in sys.argv[1:]
    text = render()
    if check:
        if PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is stale: run python scripts/gen_cli_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
