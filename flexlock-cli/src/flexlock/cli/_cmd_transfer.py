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
        "same tag, verified, with run.lock uploaded last as the completion marker. Safe to re-run.",
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

    def handler(args: argparse.Namespace) -> int:
        from flexlock.cli._push import push

        runs = push(args.run_dirs, data_remote=args.data_remote, git_remote=args.git_remote)
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
        help="restore a pushed run (code, data, upstream runs) and verify every hash",
        description="Restore the run pushed under TAG into --into: data is downloaded to a "
        "staging directory, verified against the manifest's sha256, then moved into place; code "
        "is cloned at the tag and checked against the recorded tree.",
    )
    parser.add_argument("tag", help="the run's tag, e.g. flexlock/0123456789ab")
    parser.add_argument("--data-remote", "--data_remote", required=True, dest="data_remote")
    parser.add_argument("--into", required=True, help="destination directory")
    parser.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="[KEY=]URL",
        help="git URL or path of the code (KEY=URL per repo of the sheet; "
        "default: the remote recorded in the sheet)",
    )
    parser.add_argument(
        "--symlink",
        action="store_true",
        help="link to a local directory store (made read-only) instead of copying",
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
            upstream=args.upstream,
        )
        print(f"restored run {lock.id} into {args.into}")
        return 0

    parser.set_defaults(handler=handler)
