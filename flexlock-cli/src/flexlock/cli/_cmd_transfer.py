"""Registrars of `flexlock push` and `flexlock pull` (cheap imports: the work is in _push/_pull)."""

from __future__ import annotations

import argparse

__all__ = ["register_pull", "register_push"]


def register_push(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock push RUN_DIR... --data-remote REMOTE`."""
    parser = subparsers.add_parser(
        "push",
        help="publish runs and everything upstream: code as git tags, data with rclone",
        description="Publish each run and its upstream runs: snapshot commits as tags "
        "flexlock/<id> on each repo's git remote, save_dirs and data inputs with rclone under the "
        "same tag, verified, then run.lock as the completion marker, and only then the tags. "
        ".flexlock/debug/ stays home unless --with-debug. Safe to re-run after any kill.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directory or run.lock")
    parser.add_argument(
        "--data-remote",
        "--data_remote",
        required=True,
        dest="data_remote",
        help="rclone destination, e.g. store:bucket/flexlock or a local directory",
    )
    parser.add_argument(
        "--git-remote",
        "--git_remote",
        default="origin",
        dest="git_remote",
        help="git remote name in each repo (default: origin)",
    )
    parser.add_argument(
        "--with-debug",
        "--with_debug",
        action="store_true",
        dest="with_debug",
        help="also push .flexlock/debug/ (a failed task's local variables, UNREDACTED: "
        "passwords and tokens included); by default it stays on this machine",
    )

    def handler(args: argparse.Namespace) -> int:
        from flexlock.cli._push import push

        runs = push(
            args.run_dirs,
            data_remote=args.data_remote,
            git_remote=args.git_remote,
            with_debug=args.with_debug,
        )
        print(
            f"pushed {len(runs)} run(s); restore with: flexlock pull {runs[-1].tag} "
            f"--data-remote {args.data_remote} --into DIR"
        )
        return 0

    parser.set_defaults(handler=handler)


def register_pull(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `flexlock pull TAG --data-remote REMOTE --into DIR`."""
    parser = subparsers.add_parser(
        "pull",
        help="restore a pushed run as a working project (code, data, upstream runs), verified",
        description="Restore the run TAG names into --into, which becomes the run's working "
        "directory: each repo checked out at the tag at its recorded place (repo '.' is --into "
        "itself), data inputs and run directories at their recorded paths. Every sheet must "
        "hash to the id the tag names and every file must match its sheet; everything is "
        "staged inside --into and moved into place only when all checks passed (a failed "
        "pull leaves --into as it was).",
    )
    parser.add_argument(
        "tag",
        help="the run's tag (flexlock/sha256-<hex>) or a unique prefix of its hex digest",
    )
    parser.add_argument("--data-remote", "--data_remote", required=True, dest="data_remote")
    parser.add_argument(
        "--into", required=True, help="destination directory (empty, unless --merge)"
    )
    parser.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="[KEY=]URL",
        help="git URL or path of the code (KEY=URL per repo of the sheet; default: the URL "
        "push recorded, else the remote recorded in the sheet)",
    )
    parser.add_argument(
        "--symlink",
        action="store_true",
        help="link data to a local directory store instead of copying (the store is never "
        "modified; links never lead out of it)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="allow a non-empty --into; refused where a file there differs",
    )
    parser.add_argument(
        "--no-code",
        "--no_code",
        action="store_false",
        dest="code",
        help="restore data and run directories only, not the code",
    )
    parser.add_argument(
        "--allow-failed",
        "--allow_failed",
        action="store_true",
        dest="allow_failed",
        help="restore a run whose status is not succeeded",
    )
    parser.add_argument(
        "--allow-incomplete", "--allow_incomplete", action="store_true", dest="allow_incomplete"
    )
    parser.add_argument(
        "--no-upstream",
        "--no_upstream",
        action="store_false",
        dest="upstream",
        help="restore only this run, not its upstream runs",
    )

    def handler(args: argparse.Namespace) -> int:
        from flexlock.cli._pull import pull

        repos = {}
        for item in args.repo:
            key, sep, url = item.partition("=")
            repos[key if sep and "://" not in key else "*"] = (
                url if sep and "://" not in key else item
            )
        lock = pull(
            args.tag,
            data_remote=args.data_remote,
            into=args.into,
            repos=repos,
            symlink=args.symlink,
            allow_incomplete=args.allow_incomplete,
            allow_failed=args.allow_failed,
            merge=args.merge,
            code=args.code,
            upstream=args.upstream,
        )
        print(f"restored run {lock.id} into {args.into}")
        return 0

    parser.set_defaults(handler=handler)
