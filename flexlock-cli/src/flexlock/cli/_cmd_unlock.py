"""`flexlock unlock RUN_DIR`: remove the lock a dead run left on its save_dir."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock unlock`."""
    parser = subparsers.add_parser(
        "unlock",
        help="remove a stale save_dir lock, showing who holds it",
        description=(
            "Show the holder of RUN_DIR's lock (.flexlock/lock: host, pid, start, last "
            "heartbeat) and remove it after confirmation. A lock whose holder is alive "
            "(a process on this host, or a heartbeat from another host within the TTL) "
            "is only removed with --force. The run's sheet is left as it is: the next "
            "run there keeps it in history as interrupted."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the save_dir holding .flexlock/lock")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--force", action="store_true", help="remove it even though its holder looks alive"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when removed (or not locked), 1 when declined, 2 for a live holder or bad input."""
    from pathlib import Path

    from flexlock.core import ConfigError, RunInProgressError, break_lock, lock_holder

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such directory; give the run's save_dir")
    found = lock_holder(run_dir)
    lock = run_dir / ".flexlock" / "lock"
    if found is None:
        print(f"{run_dir} is not locked")
        return 0
    holder, age, stale = found
    if holder:
        who = f"host {holder.get('host')}, pid {holder.get('pid')}, started {holder.get('created')}"
    else:
        who = "unreadable owner data"
    state = "stale" if stale else "ALIVE"
    print(f"{lock}: held by {who}; last heartbeat {age:.0f} s ago ({state})")
    if not stale and not args.force:
        raise RunInProgressError(
            f"{run_dir} is held by a live run ({who}); stop that run first, or pass --force "
            "if you know it is gone"
        )
    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError("not a terminal to ask for confirmation: pass --yes to remove it")
        answer = input(f"remove {lock}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("left as it was")
            return 1
    broken = break_lock(run_dir)
    print(f"removed {lock}" if broken is not None else f"{lock} was already gone")
    return 0
