"""The runnable examples in ``examples/`` run, against the embedded broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.kafka.topics import create_topics
from streams.settings import Settings
from tests.streams.client.support import recommendation
from tests.support import REPO, TopicReader, isolated_settings, produce, wait_for


@pytest.fixture
def settings(broker: Any, tmp_path: Path) -> Settings:
    settings = isolated_settings(broker.url, tmp_path)
    create_topics(settings)
    return settings


def run_example(name: str, settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *args],
        env={**os.environ, **settings.to_env()}, cwd=REPO, capture_output=True, text=True,
        timeout=120, check=False)


def test_produce_events(settings: Settings) -> None:
    done = run_example("produce_events.py", settings, "--users", "2", "--events", "6")
    assert done.returncode == 0, done.stderr
    assert "rejected before sending: missing_field" in done.stdout
    reader = TopicReader(settings, list(settings.input_topics))
    try:
        messages = wait_for(lambda: len(reader.poll()) >= 6 and reader.messages, 30,
                            "the example's six events")
    finally:
        reader.close()
    assert {m.key() for m in messages} == {b"example-user-0", b"example-user-1"}
    assert all(orjson.loads(m.value())["user_id"].encode() == m.key() for m in messages)


def test_consume_recommendations(settings: Settings) -> None:
    topic = settings.topic_recommendations
    produce(settings, [(topic, b"u-1", recommendation("u-1", ["sku-1", "sku-2"])),
                       (topic, b"u-2", None)])
    done = run_example("consume_recommendations.py", settings, "--group",
                       f"{settings.app_id}-example", "--idle-timeout", "3")
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == ["u-1: sku-1 sku-2", "u-2: erased"]
