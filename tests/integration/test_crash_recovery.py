"""Kill the worker with SIGKILL three times mid-stream: nothing lost, nothing applied twice.

The second restart also loses the local state directory, so the whole state must come back
from the changelog, and a final kill at rest restarts on persisted offsets that sit at the
changelogs' tails: both fail without :mod:`streams.kafka.end_offsets`'s exact end offsets on Tansu.

A producer sends events for many users (with some producer-retry duplicates) while the
worker is killed at random points and restarted with the same state directory. At the end
every user's state must equal the state obtained by applying the same events offline through
the same pure update functions, and every user's last recommendation must reflect their
newest event.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from devtools.broker import EmbeddedBroker
from schemas.events import DecodeLimits, decode_event
from streams.app import state_bounds
from streams.kafka.topics import create_topics
from streams.settings import Settings
from streams.state.user_state import UserState, apply_events
from tests.support import WorkerProcess, isolated_settings, produce, wait_for

USERS = 150
EVENTS_PER_USER = 16
DUPLICATE_EVERY = 9  # every 9th event is sent twice (a producer retry)
KILLS = 3
TYPES = ("view", "view", "click", "view", "add_to_cart", "purchase")

FAST_GROUP = dict(broker_session_timeout_s=6.0, broker_rebalance_timeout_s=4.0,
                  broker_heartbeat_interval_s=0.5)


def make_events(start_ms: int) -> list[dict[str, Any]]:
    events = []
    for n in range(EVENTS_PER_USER):
        for u in range(USERS):
            events.append({
                "event_id": f"cr-{u}-{n}",
                "event_type": TYPES[(u + n) % len(TYPES)],
                "user_id": f"cr-user-{u}",
                "item_id": f"item-{(u * 13 + n * 7) % 97}",
                "timestamp": start_ms + n * 1000 + u,
                "session_id": f"cr-s-{u}",
            })
    return events


def expected_states(events: list[dict[str, Any]], settings: Settings) -> dict[str, UserState]:
    bounds = state_bounds(settings)
    per_user: dict[str, list[Any]] = {}
    for raw in events:
        decoded = decode_event(orjson.dumps(raw), settings.topic_for(raw["event_type"]),
                               DecodeLimits(topic_event_types={}), raw["timestamp"])
        per_user.setdefault(raw["user_id"], []).append(decoded)
    expected = {}
    for user, user_events in per_user.items():
        folded = apply_events(None, user_events, bounds)
        assert folded.state is not None
        expected[user] = folded.state
    return expected


def test_sigkill_three_times_loses_nothing_and_applies_nothing_twice(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = isolated_settings(broker.url, tmp_path, topic_partitions=4, **FAST_GROUP)
    create_topics(settings)
    rng = random.Random(20261123)
    events = make_events(int(time.time() * 1000) - 600_000)
    sent: list[dict[str, Any]] = []
    for n, event in enumerate(events):
        sent.append(event)
        if n % DUPLICATE_EVERY == 0:
            sent.append(event)

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    progress = {"sent": 0}

    def producer() -> None:
        chunk = 100
        for start in range(0, len(sent), chunk):
            produce(settings, [
                (settings.topic_for(e["event_type"]), e["user_id"].encode(),
                 orjson.dumps(e)) for e in sent[start:start + chunk]
            ])
            progress["sent"] = start + chunk
            time.sleep(0.05)  # a steady producer, not a test wait

    try:
        worker.wait_ready()
        thread = threading.Thread(target=producer, daemon=True)
        thread.start()
        kill_points = sorted(rng.sample(range(len(sent) // 10, len(sent) * 9 // 10), KILLS))
        for kill, point in enumerate(kill_points):
            wait_for(lambda p=point: progress["sent"] >= p, 120, f"{point} events sent")
            worker.kill()
            if kill == 1:
                # The second restart is on a "new machine": no local RocksDB at all, so the
                # whole state must come back from the changelog topics.
                shutil.rmtree(settings.data_dir)
            worker.start()
            worker.wait_ready()
        thread.join(timeout=120)
        assert not thread.is_alive()

        expected = expected_states(sent, settings)

        def user_doc(user: str) -> dict[str, Any] | None:
            status, doc = worker.get(f"/users/{user}")
            return doc if status == 200 else None

        def all_applied() -> bool:
            return all(
                (doc := user_doc(user)) is not None
                and doc["events_applied"] == state.events_applied
                and doc["last_recommendation"] is not None
                and doc["last_recommendation"]["trigger"]["event_id"]
                == state.newest_event.event_id
                for user, state in expected.items()
            )

        wait_for(all_applied, 90, "every user's state to reflect all their events",
                 interval_s=0.5)
        # Once more at rest: the persisted changelog offsets now sit at the topics' tails,
        # where a wrong end offset makes Faust refuse to start (ConsistencyError) on Tansu.
        worker.kill()
        worker.start()
        worker.wait_ready()
        assert all_applied()
        for user, state in expected.items():
            doc = user_doc(user)
            assert doc is not None
            assert doc["counts"] == dict(state.counts), user
            assert [(r["item_id"], r["event_type"], r["event_time_ms"])
                    for r in doc["recent"]] == [tuple(i) for i in state.recent], user
            assert doc["purchased"] == list(state.purchased), user
            assert doc["events_applied"] == EVENTS_PER_USER, user
            assert doc["session_id"] == state.session_id, user
    finally:
        worker.stop()
        print(worker.log_tail(30))
