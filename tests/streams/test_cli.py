"""The ``streamrec`` command line: every public command, no PyTorch for stream commands."""

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
    ("broker",): "_run_broker",
    ("topics", "create"): "_run_topics_create",
    ("worker",): "_run_worker",
    ("settings",): "_run_settings",
    ("demo",): "_run_demo",
    ("erase-user", "user-42"): "_run_erase_user",
    ("bench",): "_run_bench",
    ("soak",): "_run_soak",
}
MODEL_COMMANDS = ("train", "evaluate", "bench-scoring")


def run_python(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter (clean ``sys.modules``); it prints one JSON line."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(("argv", "handler"), STREAM_COMMANDS.items())
def test_every_stream_command_parses_to_its_handler(argv: tuple[str, ...], handler: str) -> None:
    args = build_parser(argv[0]).parse_args(list(argv))
    assert args.command == argv[0]
    assert args.handler.__name__ == handler


def test_the_stream_parser_still_lists_the_model_commands() -> None:
    parser = build_parser("worker")
    for name in MODEL_COMMANDS:
        assert parser.parse_args([name]).command == name
    assert parser.parse_args(["erase-user", "u-1"]).user_id == "u-1"
    usage = parser.format_usage()
    for name in [argv[0] for argv in STREAM_COMMANDS] + list(MODEL_COMMANDS):
        assert name in usage


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
    assert loaded == {"handler": "models.cli_train.run_bench_scoring", "model": "m"}


def test_settings_errors_exit_2_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAMREC_TOPIC_PARTITIONS", "0")
    assert main(["settings"]) == 2
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
