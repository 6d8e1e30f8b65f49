"""Integration fixtures: a tiny real model trained once per session by the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from devtools.demo.generator import GeneratorConfig, generate_events
from tests.support import REPO


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
