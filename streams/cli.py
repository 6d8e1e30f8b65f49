"""``streamrec`` command line: broker, topics, worker, demo, erase-user, bench, soak, train,
evaluate, bench-scoring."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from models.errors import ModelsError
from schemas.errors import SchemasError
from streams.errors import StreamrecError


def _add_broker(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "broker", help="run the embedded Tansu broker (development only, in memory)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9092)
    parser.set_defaults(handler=_run_broker)


def _run_broker(args: argparse.Namespace) -> int:
    from streams.broker import run_broker_foreground

    return run_broker_foreground(args.host, args.port)


def _add_topics(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("topics", help="manage streamrec's topics")
    topic_sub = parser.add_subparsers(dest="topics_command", required=True)
    create = topic_sub.add_parser("create", help="create every topic (idempotent)")
    create.set_defaults(handler=_run_topics_create)


def _run_topics_create(args: argparse.Namespace) -> int:
    from streams.kafka.topics import create_topics
    from streams.settings import load_settings

    for name, outcome in create_topics(load_settings()).items():
        print(f"{name}: {outcome}")
    return 0


def _add_worker(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("worker", help="run a stream worker (settings: STREAMREC_*)")
    parser.set_defaults(handler=_run_worker)


def _run_worker(args: argparse.Namespace) -> int:
    from streams.runner import run_worker
    from streams.settings import load_settings

    return run_worker(load_settings())


def _add_settings(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("settings", help="print the effective settings (secrets hidden)")
    parser.set_defaults(handler=_run_settings)


def _run_settings(args: argparse.Namespace) -> int:
    from streams.settings import load_settings

    print(repr(load_settings()))
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    from streams.demo.command import add_demo_arguments

    parser = sub.add_parser("demo", help="run the whole pipeline end to end on one machine")
    add_demo_arguments(parser)
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from streams.demo.command import run_demo

    return run_demo(args)


# The offline commands live in ``models`` and import PyTorch: (module, add-parser, run).
MODEL_COMMANDS = {
    "train": ("models.cli_train", "add_train_parser", "run_train",
              "train a model and write a servable model directory"),
    "evaluate": ("models.cli_evaluate", "add_evaluate_parser", "run_evaluate",
                 "full-ranking offline evaluation of a model or a baseline"),
    "bench-scoring": ("models.cli_train", "add_bench_scoring_parser", "run_bench_scoring",
                      "ONNX Runtime scoring latency and throughput of a model directory"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser. Model commands are imported only when ``command`` is one of them
    (or unknown, e.g. for --help), so ``streamrec worker`` never imports PyTorch."""
    parser = argparse.ArgumentParser(
        prog="streamrec", description="Real-time recommendation stream processor."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_broker(sub)
    _add_topics(sub)
    _add_worker(sub)
    _add_settings(sub)
    _add_demo(sub)
    _add_erase_user(sub)
    _add_bench(sub)
    _add_soak(sub)
    stream_commands = set(sub.choices)
    for name, (module_name, add_name, run_name, help_text) in MODEL_COMMANDS.items():
        # --help, no command or a typo: build every parser so argparse can list them
        wanted = name == command if command in MODEL_COMMANDS else command not in stream_commands
        if not wanted:
            sub.add_parser(name, help=help_text)  # never parsed in this invocation
            continue
        module = importlib.import_module(module_name)
        getattr(module, add_name)(sub).set_defaults(handler=getattr(module, run_name))
    return parser


def _add_erase_user(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "erase-user", help="erase a user's state and last recommendation (right to erasure)"
    )
    parser.add_argument("user_id")
    parser.set_defaults(handler=_run_erase_user)


def _run_erase_user(args: argparse.Namespace) -> int:
    import orjson

    from streams.demo.replay import send_raw
    from streams.settings import load_settings

    settings = load_settings()
    send_raw(settings, [(settings.topic_user_erasure, None,
                         orjson.dumps({"user_id": args.user_id}))])
    print(f"erasure requested on {settings.topic_user_erasure}")
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from streams.bench.command import add_bench_arguments

    parser = sub.add_parser(
        "bench", help="throughput/freshness benchmark: baseline, ceiling and streamrec"
    )
    add_bench_arguments(parser)
    parser.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from streams.bench.command import run_bench

    return run_bench(args)


def _add_soak(sub: argparse._SubParsersAction) -> None:
    from streams.soak.command import add_soak_arguments

    parser = sub.add_parser(
        "soak", help="bounded-state soak: a million synthetic users, RSS and disk sampled"
    )
    add_soak_arguments(parser)
    parser.set_defaults(handler=_run_soak)


def _run_soak(args: argparse.Namespace) -> int:
    from streams.soak.command import run_soak_command

    return run_soak_command(args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.handler(args))
    except (StreamrecError, ModelsError, SchemasError) as exc:
        print(f"streamrec: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
