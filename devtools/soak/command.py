"""``streamrec soak``: arguments and entry point."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=1_000_000, help="regular synthetic users")
    parser.add_argument("--events-per-user", type=int, default=1,
                        help="visits of each regular user (each event costs ~3 KB of "
                        "memory in the embedded broker)")
    parser.add_argument("--revisit-lag", type=int, default=5_000,
                        help="new users arriving between two visits of one user")
    parser.add_argument("--heavy-users", type=int, default=500,
                        help="users who keep coming back (they fill every state bound)")
    parser.add_argument("--heavy-share", type=float, default=0.05,
                        help="fraction of events from heavy users")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds")
    parser.add_argument("--max-backlog", type=int, default=20_000,
                        help="events the producer may run ahead of the worker")
    parser.add_argument("--broker-url", default=None,
                        help="use this Kafka instead of starting the embedded broker")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep-workdir", action="store_true")
    parser.add_argument("--json", type=Path, default=Path("soak.json"), dest="json_out",
                        help="where to write samples and summary")


def run_soak_command(args: argparse.Namespace) -> int:
    from devtools.soak.run import run_soak

    run_soak(
        args.users, events_per_user=args.events_per_user, revisit_lag=args.revisit_lag,
        heavy_users=args.heavy_users, heavy_share=args.heavy_share,
        partitions=args.partitions, sample_every_s=args.sample_every,
        max_backlog=args.max_backlog, broker_url=args.broker_url, workdir=args.workdir,
        keep_workdir=args.keep_workdir, json_out=args.json_out,
    )
    return 0


def main() -> int:
    """``python -m devtools.soak.command``: the same as ``streamrec soak``."""
    parser = argparse.ArgumentParser(prog="streamrec soak", description=__doc__)
    add_soak_arguments(parser)
    return run_soak_command(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
