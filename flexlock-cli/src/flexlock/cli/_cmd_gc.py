"""`flexlock gc [DIR...]`: remove old history sheets, unneeded snapshot refs, dead cache shards."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock gc`."""
    parser = subparsers.add_parser(
        "gc",
        help="remove old history sheets, snapshot refs no sheet needs and dead cache entries",
        description=(
            "Say what can go under each DIR, and the space it frees; with --yes, remove it. "
            "History: each save_dir's .flexlock/history/ beyond the newest --keep-history "
            "sheets (and, with --older-than, only those created before that date). Refs: "
            "refs/flexlock/ refs of the recorded repositories whose commit no sheet names, "
            "among the sheets under DIR and in every save_dir that pinned a snapshot in "
            "those repositories; refs written within the last hour are kept. Per-run refs "
            "of older versions that are still needed become one ref per commit. Cache: hash "
            "cache entries of roots that no longer exist, and of older cache formats. "
            "Nothing a present sheet needs is removed."
        ),
    )
    parser.add_argument("dirs", nargs="*", default=["."], metavar="DIR", help="default: .")
    parser.add_argument(
        "--keep-history",
        "--keep_history",
        dest="keep_history",
        type=int,
        default=10,
        metavar="N",
        help="history sheets kept per save_dir, newest first (default: 10)",
    )
    parser.add_argument(
        "--older-than",
        "--older_than",
        dest="older_than",
        default=None,
        metavar="DATE",
        help="only remove history sheets created before DATE (UTC, e.g. 2026-11-01)",
    )
    parser.add_argument(
        "--no-cache",
        "--no_cache",
        dest="no_cache",
        action="store_true",
        help="leave the hash cache alone",
    )
    parser.add_argument("-y", "--yes", action="store_true", help="remove (default: dry run)")
    parser.set_defaults(handler=run)


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count} B"


def run(args: argparse.Namespace) -> int:
    """Print (and with --yes, apply) the plan; exit 0, 2 for a bad directory or option."""
    import re

    from flexlock.core import ConfigError, plan_gc

    if args.keep_history < 0:
        raise ConfigError(f"--keep-history {args.keep_history}: give 0 or more")
    if args.older_than is not None and not re.fullmatch(
        r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?Z?)?", args.older_than
    ):
        raise ConfigError(
            f"--older-than {args.older_than!r}: expected a date (2026-11-01) or a UTC "
            "time (2026-11-01T12:00:00Z)"
        )
    plan = plan_gc(
        args.dirs,
        keep_history=args.keep_history,
        older_than=args.older_than,
        clean_cache=not args.no_cache,
    )
    verb = "removed" if args.yes else "would remove"
    history_bytes = sum(size for _, size in plan.history)
    saved = len({path.parent.parent.parent for path, _ in plan.history})
    print(
        f"history: {verb} {len(plan.history)} sheet(s) in {saved} save_dir(s), "
        f"{_size(history_bytes)}"
    )
    for root in sorted({*plan.refs, *plan.migrate}):
        dropped, moved = plan.refs.get(root, ()), plan.migrate.get(root, ())
        kept = len({commit for _, commit in moved})
        line = f"refs of {root}: {verb} {len(dropped)} snapshot ref(s) no sheet needs"
        if moved:
            line += f"; {len(moved)} per-run ref(s) become {kept} per-commit ref(s)"
        print(line + " (the objects go at the repository's next `git gc`)")
    if not args.no_cache:
        cache_bytes = sum(size for _, size in plan.cache)
        print(f"hash cache: {verb} {len(plan.cache)} entry folder(s), {_size(cache_bytes)}")
    print(
        f"{plan.sheets} sheet(s) read, naming {plan.needed} snapshot commit(s): all kept; "
        f"{_size(plan.freed)} {'freed' if args.yes else 'to free'}"
    )
    if args.yes:
        plan.apply()
    else:
        print("dry run: nothing was removed; run again with --yes to remove it")
    return 0
