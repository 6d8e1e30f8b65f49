"""The ``streamrec`` command line: every public command, no PyTorch for stream commands, no
development tools (``devtools``) for anything but the tool asked for."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streams.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]

STREAM_COMMANDS = {
    ("topics", "create"): "_run_topics_create",
    ("worker",): "_run_worker",
    ("settings",): "_run_settings",
    ("erase-user", "user-42"): "_run_erase_user",
}
DEV_COMMANDS = {
    ("broker",): "devtools.broker.run_broker_command",
    ("demo",): "devtools.demo.command.run_demo",
    ("bench",): "devtools.bench.command.run_bench",
    ("soak",): "devtools.soak.command.run_soak_command",
}
MODEL_COMMANDS = ("train", "evaluate", "bench-scoring")


def run_python(code: str, cwd: Path = REPO) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter (clean ``sys.modules``); it prints one JSON line."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(("argv", "handler"), STREAM_COMMANDS.items())
def test_every_stream_command_parses_to_its_handler(argv: tuple[str, ...], handler: str) -> None:
    args = build_parser(argv[0]).parse_args(list(argv))
    assert args.command == argv[0]
    assert args.handler.__name__ == handler


@pytest.mark.parametrize(("argv", "handler"), DEV_COMMANDS.items())
def test_every_dev_command_parses_to_its_tool(argv: tuple[str, ...], handler: str) -> None:
    args = build_parser(argv[0]).parse_args(list(argv))
    assert args.command == argv[0]
    assert f"{args.handler.__module__}.{args.handler.__name__}" == handler


def test_the_stream_parser_still_lists_the_model_and_dev_commands() -> None:
    parser = build_parser("worker")
    for name in MODEL_COMMANDS + tuple(argv[0] for argv in DEV_COMMANDS):
        assert parser.parse_args([name]).command == name
    assert parser.parse_args(["erase-user", "u-1"]).user_id == "u-1"
    usage = parser.format_usage()
    for name in [argv[0] for argv in [*STREAM_COMMANDS, *DEV_COMMANDS]] + list(MODEL_COMMANDS):
        assert name in usage


def test_the_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in [argv[0] for argv in [*STREAM_COMMANDS, *DEV_COMMANDS]] + list(MODEL_COMMANDS):
        assert f"\n    {name} " in out


def test_the_worker_never_imports_the_dev_tools() -> None:
    loaded = run_python("""
        import contextlib, io, json, sys
        from streams.cli import build_parser, main
        build_parser("worker")
        with contextlib.redirect_stdout(io.StringIO()):
            for argv in (["worker", "--help"], ["--help"]):
                try:
                    main(argv)
                except SystemExit:
                    pass
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "devtools")))
    """)
    assert loaded == []


def test_a_dev_command_imports_its_own_tool_only() -> None:
    loaded = run_python("""
        import json, sys
        from streams.cli import build_parser
        build_parser("soak")
        print(json.dumps({"soak": "devtools.soak.command" in sys.modules,
                          "others": sorted(m for m in sys.modules if m.startswith(
                              ("devtools.bench", "devtools.demo")))}))
    """)
    assert loaded == {"soak": True, "others": []}


def test_dev_commands_find_the_checkout_from_anywhere(tmp_path: Path) -> None:
    """The ``streamrec`` script runs outside the checkout, where ``import devtools`` fails
    (it is not installed): the CLI adds the checkout to ``sys.path`` itself."""
    loaded = run_python("""
        import contextlib, io, json
        try:
            import devtools
            found_before = True
        except ModuleNotFoundError:
            found_before = False
        from streams.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                main(["broker", "--help"])
            except SystemExit as exc:
                code = exc.code
        print(json.dumps({"found_before": found_before, "exit": code,
                          "help": "--log-level" in out.getvalue()}))
    """, cwd=tmp_path)
    assert loaded == {"found_before": False, "exit": 0, "help": True}


def test_without_a_checkout_a_dev_command_says_where_to_run_it(tmp_path: Path) -> None:
    loaded = run_python("""
        import contextlib, io, json, sys
        sys.modules["devtools"] = None  # as in an installed wheel or the image
        from streams.cli import main
        with contextlib.redirect_stderr(io.StringIO()) as err:
            try:
                main(["demo", "--quick"])
            except SystemExit as exc:
                code = exc.code
        print(json.dumps({"exit": code, "err": err.getvalue()}))
    """, cwd=tmp_path)
    assert loaded["exit"] == 1
    assert "streamrec demo is a development tool; run it from a source checkout" in str(
        loaded["err"])
    assert "make demo" in str(loaded["err"])


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser("worker").parse_args(["no-such-command"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_stream_command_does_not_import_torch() -> None:
    loaded = run_python("""
        import contextlib, io, json, sys
        from streams.cli import build_parser, main
        build_parser("worker")
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                main(["worker", "--help"])
            except SystemExit as exc:
                code = exc.code
        print(json.dumps({"torch": "torch" in sys.modules, "exit": code,
                          "help": "usage: streamrec worker" in out.getvalue(),
                          "model_clis": [m for m in ("models.cli_train", "models.cli_evaluate")
                                         if m in sys.modules]}))
    """)
    assert loaded == {"torch": False, "exit": 0, "help": True, "model_clis": []}


def test_a_model_command_gets_its_real_parser() -> None:
    loaded = run_python("""
        import json
        from streams.cli import build_parser
        args = build_parser("bench-scoring").parse_args(["bench-scoring", "--model", "m"])
        print(json.dumps({"handler": f"{args.handler.__module__}.{args.handler.__name__}",
                          "model": str(args.model)}))
    """)
    assert loaded == {"handler": "models.cli_bench_scoring.run_bench_scoring", "model": "m"}


def test_settings_errors_exit_1_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAMREC_TOPIC_PARTITIONS", "0")
    assert main(["settings"]) == 1  # a runtime failure, not a usage error (2)
    err = capsys.readouterr().err
    assert err.startswith("streamrec: error: ")
    assert "STREAMREC_TOPIC_PARTITIONS" in err


def test_settings_prints_the_effective_settings_without_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAMREC_TOPIC_PARTITIONS", "7")
    monkeypatch.setenv("STREAMREC_BROKER_SASL_PASSWORD", "hunter2-secret")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "topic_partitions=7" in out
    assert "hunter2-secret" not in out


# --- --version and exit codes: 0 success, 1 the command failed, 2 usage ----------------------

def test_version_prints_the_package_version_without_importing_torch() -> None:
    from streams import __version__

    loaded = run_python("""
        import contextlib, io, json, sys
        from streams.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["--version"])
        print(json.dumps({"out": out.getvalue(), "exit": code, "torch": "torch" in sys.modules}))
    """)
    assert loaded == {"out": f"streamrec {__version__}\n", "exit": 0, "torch": False}


def test_usage_errors_exit_2_and_runtime_failures_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["erase-user"], ["worker", "--no-such-option"], ["no-such-command"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2, argv
    assert "usage: streamrec" in capsys.readouterr().err

    from streams.errors import BrokerUnavailableError

    def unreachable(*args: object, **kwargs: object) -> None:
        raise BrokerUnavailableError("no Kafka broker answered at kafka://nowhere:9092")

    monkeypatch.setattr("streams.client.producer.EventProducer.__init__", unreachable)
    assert main(["erase-user", "u-1"]) == 1
    assert capsys.readouterr().err == (
        "streamrec: error: no Kafka broker answered at kafka://nowhere:9092\n")


def test_the_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser("worker").parse_args(["--help"])
    import re

    epilog = capsys.readouterr().out.split("exit codes:", 1)[1]
    for code, meaning in (("0", "success"), ("1", "failed"), ("2", "usage error"),
                          ("3", "--min-ratio")):
        assert re.search(rf"^ +{code} +.*{meaning}", epilog, re.MULTILINE), (code, epilog)


# --- the model lifecycle: models, experiment, export-events, retrain (issue 13) --------------

LIFECYCLE_COMMANDS = {
    ("models", "list"): "streams.control.cli_models.run_models",
    ("experiment", "stop", "spring"): "streams.control.cli_experiment.run_experiment",
}
LIFECYCLE_NAMES = ("models", "experiment", "export-events", "retrain")
LIFECYCLE_MODULES = ("streams.control.cli_models", "streams.control.cli_experiment",
                     "streams.experiments.report_cli", "streams.lifecycle.export_cli",
                     "streams.lifecycle.retrain_cli")


@pytest.mark.parametrize(("argv", "handler"), LIFECYCLE_COMMANDS.items())
def test_lifecycle_commands_parse_to_their_handlers(argv: tuple[str, ...], handler: str) -> None:
    args = build_parser(*argv[:2]).parse_args(list(argv))
    assert f"{args.handler.__module__}.{args.handler.__name__}" == handler


def test_the_help_lists_the_lifecycle_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in LIFECYCLE_NAMES:
        assert f"\n    {name} " in out, name


def test_the_worker_and_the_help_import_no_lifecycle_command() -> None:
    loaded = run_python(f"""
        import contextlib, io, json, sys
        from streams.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            for argv in (["worker", "--help"], ["--help"], ["settings"]):
                try:
                    main(argv)
                except SystemExit:
                    pass
        print(json.dumps([m for m in {LIFECYCLE_MODULES!r} if m in sys.modules]))
    """)
    assert loaded == []


def test_models_list_imports_neither_torch_nor_the_other_commands(tmp_path: Path) -> None:
    """``streamrec models list`` with the broker down: it lists (nothing), says the promotion
    is unknown, and loads no PyTorch, no model command and no other lifecycle command."""
    loaded = run_python(f"""
        import contextlib, io, json, os, socket, sys
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        os.environ["STREAMREC_BROKER_URL"] = f"kafka://127.0.0.1:{{port}}"
        os.environ["STREAMREC_MODEL_REGISTRY"] = {str(tmp_path / "registry")!r}
        from streams.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["models", "list"])
        print(json.dumps({{"exit": code, "unknown": "promotion unknown" in out.getvalue(),
                          "torch": "torch" in sys.modules,
                          "others": [m for m in sys.modules if m.startswith(
                              ("models.cli_", "models.neural", "streams.lifecycle",
                               "streams.experiments", "streams.control.cli_experiment"))]}}))
    """)
    assert loaded == {"exit": 0, "unknown": True, "torch": False, "others": []}


@pytest.mark.parametrize(("command", "module_name", "add_name", "run_name"), [
    ("export-events", "streams.lifecycle.export_cli", "add_export_events_arguments",
     "run_export_events"),
    ("retrain", "streams.lifecycle.retrain_cli", "add_retrain_arguments", "run_retrain"),
])
def test_lifecycle_commands_run_their_modules(
    command: str, module_name: str, add_name: str, run_name: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import types

    calls: list[argparse.Namespace] = []
    module = types.ModuleType(module_name)
    setattr(module, add_name, lambda parser: parser.add_argument("--days", type=int))
    setattr(module, run_name, lambda args: calls.append(args) or 0)
    monkeypatch.setitem(sys.modules, module_name, module)
    assert main([command, "--days", "7"]) == 0
    assert [c.days for c in calls] == [7]

    monkeypatch.setitem(sys.modules, module_name, None)  # as if it were not installed
    assert main([command, "--days", "7"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"streamrec: error: streamrec {command} is not available")
    assert f"its module {module_name} is missing" in err
