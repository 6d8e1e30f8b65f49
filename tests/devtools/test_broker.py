"""``streamrec broker``: Tansu's log level (RUST_LOG) defaults to warn; the flag wins."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import pytest

from devtools import broker
from streams.cli import build_parser


@pytest.mark.parametrize(("flag", "environ", "expected"), [
    (None, {}, "warn"),
    (None, {"RUST_LOG": "info"}, "info"),
    ("debug", {"RUST_LOG": "info"}, "debug"),
    ("error", {}, "error"),
    (None, {"RUST_LOG": ""}, "warn"),
])
def test_rust_log_is_the_flag_else_the_environment_else_warn(
    flag: str | None, environ: dict[str, str], expected: str
) -> None:
    env = broker.broker_env(flag, {"PATH": "/bin", **environ})
    assert env == {"PATH": "/bin", "RUST_LOG": expected}


def test_the_flag_takes_only_tansu_levels() -> None:
    args = build_parser("broker").parse_args(["broker", "--log-level", "info"])
    assert args.log_level == "info"
    assert build_parser("broker").parse_args(["broker"]).log_level is None
    with pytest.raises(SystemExit) as exit_info:
        build_parser("broker").parse_args(["broker", "--log-level", "trace"])
    assert exit_info.value.code == 2


class FakeTansu:
    """Stands in for the broker process: records how it was started, exits at once."""

    started: list[dict[str, Any]] = []

    def __init__(self, command: list[str], **kwargs: Any) -> None:
        self.started.append({"command": command, **kwargs})
        self.returncode = 0

    def wait(self) -> int:
        return 0

    def poll(self) -> int:
        return 0


@pytest.mark.parametrize(("argv", "environ", "expected"), [
    ([], None, "warn"),
    ([], "info", "info"),
    (["--log-level", "debug"], "info", "debug"),
])
def test_the_foreground_broker_gets_the_chosen_rust_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    argv: list[str], environ: str | None, expected: str,
) -> None:
    if environ is None:
        monkeypatch.delenv("RUST_LOG", raising=False)
    else:
        monkeypatch.setenv("RUST_LOG", environ)
    FakeTansu.started = []
    monkeypatch.setattr(subprocess, "Popen", FakeTansu)
    monkeypatch.setattr(signal, "signal", lambda *_args: None)  # keep pytest's handlers
    args = build_parser("broker").parse_args(["broker", "--port", "9999", *argv])

    assert args.handler(args) == 0

    (started,) = FakeTansu.started
    assert started["env"]["RUST_LOG"] == expected
    assert "tcp://127.0.0.1:9999" in started["command"]
    assert f"(log level {expected})" in capsys.readouterr().out
