"""``streamrec retrain`` for real: the embedded broker, a registry directory, ``streamrec
train`` in a subprocess and the ``streamrec models`` / ``experiment`` commands in-process.

One stream, three runs: nothing promoted (the candidate is promoted), a candidate allowed
through (published, shadow experiment started), a candidate held to an impossible bar (kept
out), and a fourth that supersedes the first shadow experiment."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import orjson
import pytest

from devtools.broker import EmbeddedBroker
from models.registry import ModelRegistry
from streams.control.topic import read_control_snapshot
from streams.kafka.topics import create_topics
from streams.lifecycle.retrain_cli import add_retrain_arguments, run_retrain
from streams.settings import Settings
from tests.models.conftest import make_sessions
from tests.support import isolated_settings, produce

HOUR = 3_600_000
TRAIN_ARGS = ("--epochs 1 --batch-size 16 --threads 1 --set dim=8 --set n_heads=2 "
              "--set max_seq_len=6 --set neighbors=2")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="streamrec retrain")
    add_retrain_arguments(parser)
    return parser.parse_args(["--train-args", TRAIN_ARGS, *argv])


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Settings:
    """A fresh stream of 120 sessions over the last 3 days (a quarter in the newest day), the
    registry in tmp_path, and the same settings in the environment: the in-process commands
    and the training subprocess read them there."""
    settings = isolated_settings(broker.url, tmp_path, model_registry=tmp_path / "registry")
    create_topics(settings)
    for name in list(os.environ):
        if name.startswith("STREAMREC_"):
            monkeypatch.delenv(name)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    now = int(time.time() * 1000)
    messages = []
    for s, session in enumerate(make_sessions(n_sessions=120, seed=7)):
        start = now - 70 * HOUR + s * (HOUR * 69 // 120)
        for i, item in enumerate(session):
            event = {"event_id": f"e-{s}-{i}", "event_type": "view", "user_id": f"u{s}",
                     "item_id": str(item), "timestamp": start + i * 30_000}
            messages.append((settings.topic_views, f"u{s}".encode(), orjson.dumps(event)))
    produce(settings, messages)
    return settings


def test_the_loop_promotes_shadows_keeps_and_supersedes(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = ModelRegistry(settings.model_registry or tmp_path)

    assert run_retrain(parse("--experiment", "retrain-first"), settings=settings) == 0
    out = capsys.readouterr().out
    assert "published and promoted" in out
    (first,) = [info.version for info in registry.versions()]
    snapshot = read_control_snapshot(settings)
    assert snapshot.promotion is not None and snapshot.promotion.version == first
    assert snapshot.running() is None

    args = parse("--tolerance", "1", "--experiment", "retrain-second",
                 "--work-dir", str(tmp_path / "work"))
    assert run_retrain(args, settings=settings) == 0
    out = capsys.readouterr().out
    assert f"promoted {first}: hr@20" in out and "candidate: hr@20" in out
    second = registry.versions()[-1].version
    assert second != first
    running = read_control_snapshot(settings).running()
    assert running is not None and running.name == "retrain-second"
    assert [(v.name, v.version, v.share) for v in running.variants] == [("A", first, 1.0)]
    assert running.shadow is not None and running.shadow.version == second
    assert (tmp_path / "work" / "events.jsonl").is_file(), "--work-dir is kept"

    assert run_retrain(parse("--tolerance", "-1", "--experiment", "retrain-third"),
                       settings=settings) == 0
    out = capsys.readouterr().out
    assert f"kept the promoted model {first}" in out
    assert len(registry.versions()) == 2
    assert read_control_snapshot(settings).running().name == "retrain-second"

    assert run_retrain(parse("--tolerance", "1", "--mode", "ab",
                             "--experiment", "retrain-fourth"), settings=settings) == 0
    snapshot = read_control_snapshot(settings)
    assert snapshot.experiments["retrain-second"].status == "stopped"
    running = snapshot.running()
    assert running is not None and running.name == "retrain-fourth"
    assert [v.name for v in running.variants] == ["A", "B"] and running.shadow is None
    assert snapshot.promotion is not None and snapshot.promotion.version == first
