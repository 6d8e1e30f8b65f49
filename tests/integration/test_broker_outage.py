"""The broker goes away and comes back (a dedicated embedded broker, restarted on its port).

While it is down the worker stays alive (``/healthz`` 200) and reports itself not ready
(``/readyz`` 503, from the broker probe in :mod:`streams.ops.health`). The embedded broker keeps
everything in memory, so it comes back empty: topics are created again, and the worker
must resume processing new events (``/readyz`` 200 again). State that lived only in the
broker (changelogs, committed offsets) is gone; the worker's local RocksDB state is not, so
returning users continue from the state they had, and a later restart of the worker on
the new broker recovers cleanly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from devtools.broker import EmbeddedBroker, start_broker
from streams.kafka.topics import create_topics
from streams.settings import Settings
from tests.support import (
    FAST_GROUP,
    WorkerProcess,
    isolated_settings,
    offline_states,
    produce,
    state_matches,
    wait_for,
)

USERS = 20


@pytest.fixture
def own_broker() -> Iterator[list[EmbeddedBroker]]:
    """A broker for this test alone (the list holds the current incarnation)."""
    brokers = [start_broker()]
    try:
        yield brokers
    finally:
        brokers[-1].stop()


@pytest.fixture
def settings(own_broker: list[EmbeddedBroker], tmp_path: Path) -> Settings:
    settings = isolated_settings(own_broker[0].url, tmp_path, **FAST_GROUP)
    create_topics(settings)
    return settings


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def events(round_no: int, start_ms: int) -> list[dict[str, Any]]:
    return [{"event_id": f"bo-{u}-{round_no}-{n}", "event_type": ("view", "click")[n % 2],
             "user_id": f"bo-user-{u}", "item_id": f"item-{u + n}",
             "timestamp": start_ms + round_no * 10_000 + n * 1000, "session_id": f"s{u}"}
            for u in range(USERS) for n in range(3)]


def send(settings: Settings, batch: list[dict[str, Any]]) -> None:
    produce(settings, [(settings.topic_for(e["event_type"]), e["user_id"].encode(),
                        orjson.dumps(e)) for e in batch])


def test_worker_survives_a_broker_restart_and_resumes(
    own_broker: list[EmbeddedBroker], settings: Settings, worker: WorkerProcess
) -> None:
    start_ms = int(time.time() * 1000) - 120_000
    before = events(0, start_ms)
    send(settings, before)
    expected = offline_states(before, settings)
    wait_for(lambda: all(state_matches(doc(worker, u), s) for u, s in expected.items()),
             30, "the first events applied")

    broker = own_broker[0]
    broker.stop()

    def not_ready() -> bool:
        assert worker.process.poll() is None, f"worker exited:\n{worker.log_tail()}"
        return worker.get("/readyz")[0] == 503

    wait_for(not_ready, 20, "/readyz to answer 503 while the broker is down")
    status, body = worker.get("/readyz")
    assert body["broker"]["reachable"] is False and body["broker"]["error"]
    assert worker.get("/healthz")[0] == 200

    own_broker.append(start_broker(port=broker.port))  # empty: Tansu is in memory
    create_topics(settings)

    def ready_again() -> bool:
        assert_alive(worker)
        return worker.get("/readyz")[0] == 200

    wait_for(ready_again, 60, "/readyz to answer 200 once the broker is back")
    after = events(1, start_ms)
    send(settings, after)
    expected = offline_states(before + after, settings)

    def resumed() -> bool:
        assert_alive(worker)
        return all(state_matches(doc(worker, u), s) for u, s in expected.items())

    wait_for(resumed, 60, "events sent after the restart applied on top of the old state",
             interval_s=0.5)
    assert worker.get("/readyz")[0] == 200

    # And the worker still restarts cleanly on the new broker, with the same state.
    worker.kill()
    worker.start()
    worker.wait_ready()
    assert all(state_matches(doc(worker, u), s) for u, s in expected.items())


def assert_alive(worker: WorkerProcess) -> None:
    assert worker.process.poll() is None, f"worker exited:\n{worker.log_tail()}"


def doc(worker: WorkerProcess, user: str) -> dict[str, Any] | None:
    status, body = worker.get(f"/users/{user}")
    return body if status == 200 else None
