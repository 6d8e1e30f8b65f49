"""``streamrec`` command line: broker, topics, worker, demo, train, evaluate, bench-scoring."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streams.errors import StreamrecError


def _add_broker(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "broker", help="run the embedded Tansu broker (development only, in memory)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9092)
    parser.set_defaults(handler=_run_broker)


def _run_broker(args: argparse.Namespace) -> int:
    from streams.broker import run_broker_foreground

    return run_broker_foreground(args.host, args.port)


def _add_topics(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("topics", help="manage streamrec's topics")
    topic_sub = parser.add_subparsers(dest="topics_command", required=True)
    create = topic_sub.add_parser("create", help="create every topic (idempotent)")
    create.set_defaults(handler=_run_topics_create)


def _run_topics_create(args: argparse.Namespace) -> int:
    from streams.settings import load_settings
    from streams.topics import create_topics

    for name, outcome in create_topics(load_settings()).items():
        print(f"{name}: {outcome}")
    return 0


def _add_worker(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("worker", help="run a stream worker (settings: STREAMREC_*)")
    parser.set_defaults(handler=_run_worker)


def _run_worker(args: argparse.Namespace) -> int:
    from streams.runner import run_worker
    from streams.settings import load_settings

    return run_worker(load_settings())


def _add_settings(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("settings", help="print the effective settings (secrets hidden)")
    parser.set_defaults(handler=_run_settings)


def _run_settings(args: argparse.Namespace) -> int:
    from streams.settings import load_settings

    print(repr(load_settings()))
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from streams.demo.command import add_demo_arguments

    parser = sub.add_parser("demo", help="run the whole pipeline end to end on one machine")
    add_demo_arguments(parser)
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from streams.demo.command import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamrec", description="Real-time recommendation stream processor."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_broker(sub)
    _add_topics(sub)
    _add_worker(sub)
    _add_settings(sub)
    _add_demo(sub)
    _add_model_commands(sub)
    return parser


def _add_model_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """train, evaluate and bench-scoring live in ``models`` (the offline side)."""
    from models.cli_evaluate import add_evaluate_parser, run_evaluate

    from models.cli_train import (
        add_bench_scoring_parser,
        add_train_parser,
        run_bench_scoring,
        run_train,
    )

    add_train_parser(sub).set_defaults(handler=run_train)
    add_evaluate_parser(sub).set_defaults(handler=run_evaluate)
    add_bench_scoring_parser(sub).set_defaults(handler=run_bench_scoring)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except StreamrecError as exc:
        print(f"streamrec: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
