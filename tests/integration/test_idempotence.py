"""Idempotence and event time through the real worker.

1. Events for many users arrive shuffled (within the reorder window) across the three input
   topics, some sent twice in a row (a producer retry): every user's state equals the offline
   fold, ``recent`` is in event-time order, and each retry was dropped and counted.
2. Then, per user, an event older than the newest by less than the reorder window (placed in
   order inside ``recent``) or by more (late: counted, kept out of ``recent``,
   ``streamrec_late_events_total``).
3. Then the whole input is published again (a replay of every topic segment): no state
   changes at all, and ``streamrec_duplicates_dropped_total`` counts every replayed event.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from devtools.broker import EmbeddedBroker
from streams.kafka.topics import create_topics
from streams.settings import Settings
from tests.support import (
    FAST_GROUP,
    WorkerProcess,
    isolated_settings,
    metric_values,
    offline_states,
    produce,
    state_matches,
    wait_for,
)

USERS = 40
EVENTS_PER_USER = 8
RETRY_EVERY = 5
REORDER_WINDOW_S = 120.0
TYPES = ("view", "click", "view", "add_to_cart", "purchase")


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    settings = isolated_settings(broker.url, tmp_path, reorder_window_s=REORDER_WINDOW_S,
                                 **FAST_GROUP)
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


def messages(settings: Settings, events: list[dict[str, Any]]
             ) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(settings.topic_for(e["event_type"]), e["user_id"].encode(), orjson.dumps(e))
            for e in events]


def counter(worker: WorkerProcess, name: str) -> float:
    return sum(metric_values(worker.base_url, name).values())


def test_duplicates_change_state_once_and_late_events_only_count(
    settings: Settings, worker: WorkerProcess
) -> None:
    rng = random.Random(5)
    base_ms = int(time.time() * 1000) - 3_600_000
    # Phase 1: every user's events within 70 s of each other (well inside the reorder
    # window), shuffled across users and topics; every 5th one sent twice in a row.
    events = [
        {"event_id": f"id-{u}-{n}", "event_type": TYPES[(u + n) % len(TYPES)],
         "user_id": f"id-user-{u}", "item_id": f"item-{(u * 3 + n) % 23}",
         "timestamp": base_ms + rng.randrange(0, 70_000), "session_id": f"id-s-{u}"}
        for u in range(USERS) for n in range(EVENTS_PER_USER)
    ]
    rng.shuffle(events)
    phase1: list[dict[str, Any]] = []
    for n, event in enumerate(events):
        phase1.extend([event, event] if n % RETRY_EVERY == 0 else [event])
    retries = len(phase1) - len(events)
    produce(settings, messages(settings, phase1))
    expected = offline_states(phase1, settings)
    wait_until_states(worker, expected, "phase 1 applied")
    for user in expected:
        recent = user_doc(worker, user)["recent"]  # type: ignore[index]
        times = [(r["event_time_ms"], r["item_id"], r["event_type"]) for r in recent]
        assert times == sorted(times), user
    assert counter(worker, "streamrec_duplicates_dropped_total") == retries
    assert counter(worker, "streamrec_late_events_total") == 0

    # Phase 2: an older event per user, in order inside the window or late beyond it.
    phase2 = []
    late_users, in_window_users = set(), set()
    for u in range(USERS):
        user = f"id-user-{u}"
        newest = expected[user].newest_event.event_time_ms
        late = u % 2 == 0
        (late_users if late else in_window_users).add(user)
        age_ms = int(REORDER_WINDOW_S * 1000) + 60_000 if late else 30_000
        phase2.append({"event_id": f"id-{u}-old", "event_type": "purchase",
                       "user_id": user, "item_id": f"old-item-{u}",
                       "timestamp": newest - age_ms - 45_000, "session_id": f"id-s-{u}"})
    produce(settings, messages(settings, phase2))
    expected = offline_states(phase1 + phase2, settings)
    wait_until_states(worker, expected, "phase 2 applied")
    assert counter(worker, "streamrec_late_events_total") == len(late_users)
    for user in expected:
        doc = user_doc(worker, user)
        assert doc is not None
        old_item = f"old-item-{user.rsplit('-', 1)[1]}"
        in_recent = [r["item_id"] for r in doc["recent"]].count(old_item)
        assert doc["counts"]["purchase"] >= 1 and old_item in doc["purchased"], user
        if user in late_users:
            assert in_recent == 0, f"late event of {user} entered recent"
        else:
            assert in_recent == 1 and doc["recent"][-1]["item_id"] != old_item, user
        assert doc["events_applied"] == EVENTS_PER_USER + 1

    # Phase 3: the whole input again (a replay of every topic segment): nothing changes.
    before = {user: user_doc(worker, user) for user in expected}
    dropped_before = counter(worker, "streamrec_duplicates_dropped_total")
    replayed = phase1 + phase2
    produce(settings, messages(settings, replayed))
    wait_for(lambda: counter(worker, "streamrec_duplicates_dropped_total")
             >= dropped_before + len(replayed), 30, "every replayed event dropped")
    assert counter(worker, "streamrec_duplicates_dropped_total") == dropped_before + len(
        replayed)
    assert counter(worker, "streamrec_late_events_total") == len(late_users)
    for user, state in expected.items():
        doc = user_doc(worker, user)
        assert state_matches(doc, state), user
        assert doc is not None and before[user] is not None
        assert {k: v for k, v in doc.items() if k != "last_recommendation"} == {
            k: v for k, v in before[user].items() if k != "last_recommendation"}
        assert (doc["last_recommendation"]["trigger"]
                == before[user]["last_recommendation"]["trigger"])


def user_doc(worker: WorkerProcess, user: str) -> dict[str, Any] | None:
    status, doc = worker.get(f"/users/{user}")
    return doc if status == 200 else None


def wait_until_states(worker: WorkerProcess, expected: dict[str, Any], what: str) -> None:
    wait_for(lambda: all(state_matches(user_doc(worker, user), state)
                         for user, state in expected.items()),
             45, what, interval_s=0.3)
