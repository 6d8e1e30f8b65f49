"""Integration fixtures: a tiny real model trained once per session by the real CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from devtools.demo.generator import GeneratorConfig, generate_events
from devtools.processes import free_port
from streams.settings import Settings
from tests.support import REPO, WorkerProcess


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``streamrec train --events`` on a small synthetic stream (the real command)."""
    work = tmp_path_factory.mktemp("model")
    events = generate_events(GeneratorConfig(users=300, items=200, seed=3))
    train_file = work / "events.jsonl"
    train_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    out = work / "model"
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "train", "--events", str(train_file),
         "--out", str(out), "--epochs", "2"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return out


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Two workers of one group on the test module's ``settings`` (each module defines that
    fixture), the second with its own state directory and web port; stopped afterwards."""
    other = settings.model_copy(update={"data_dir": tmp_path / "state-b",
                                        "web_port": free_port()})
    started = [WorkerProcess(settings, tmp_path / "a.log").start(),
               WorkerProcess(other, tmp_path / "b.log").start()]
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()
