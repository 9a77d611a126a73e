"""`flexlock reproduce RUN_DIR | TAG`: re-run a run and compare identity and outputs."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock reproduce`."""
    parser = subparsers.add_parser(
        "reproduce",
        help="re-run a run from its sheet and check it gives the same identity and outputs",
        description=(
            "Re-run the command recorded in the run's sheet (env.argv, with this Python) in "
            "the run's working directory, serially (task-list and executor flags dropped, the "
            "task's own values kept), into a fresh save_dir <save_dir>.reproduce-<n> (or "
            "--in-place), then compare the identity and every output. Exit 0: reproduced; "
            "3: same inputs but outputs differ (named); 2: could not reproduce (why). "
            "With a TAG, the run is pulled into --into first."
        ),
    )
    parser.add_argument("target", metavar="RUN_DIR|TAG", help="run directory, or a pushed tag")
    parser.add_argument(
        "--upstream", action="store_true", help="reproduce the upstream runs first, in order"
    )
    parser.add_argument(
        "--in-place",
        "--in_place",
        action="store_true",
        dest="in_place",
        help="re-run into the run's own save_dir (its sheet is replaced; runlock keeps "
        "the old one in its history) instead of a fresh <save_dir>.reproduce-<n>",
    )
    parser.add_argument("--into", metavar="DIR", help="with a TAG: where to pull the run first")
    parser.add_argument(
        "--data-remote", "--data_remote", dest="data_remote", help="with a TAG: the data remote"
    )

    def handler(args: argparse.Namespace) -> int:
        from flexlock.cli._reproduce import reproduce
        from flexlock.core import ConfigError

        target = Path(args.target)
        if not target.exists():
            if args.into is None or args.data_remote is None:
                raise ConfigError(
                    f"{args.target}: no such run directory; to reproduce a pushed tag, pass "
                    "--into DIR --data-remote REMOTE (the run is pulled there first)"
                )
            from flexlock.cli._pull import pull
            from flexlock.cli._transfer import restored_path

            lock = pull(args.target, data_remote=args.data_remote, into=args.into)
            target = Path(args.into) / restored_path(lock.save_dir or ".", lock)
        verdicts = reproduce(target, upstream=args.upstream, in_place=args.in_place)
        for verdict in verdicts:
            print(verdict.describe())
        codes = {verdict.exit_code for verdict in verdicts}
        return 2 if 2 in codes else 3 if 3 in codes else 0

    parser.set_defaults(handler=handler)
