"""Two workers in one group (4 partitions, one standby replica each): kill one, lose nothing.

Both workers process events for many users (each owns some partitions and keeps a standby
copy of the others' tables). One is killed with SIGKILL; its partitions move to the
survivor, which must serve them from the recovered state: every user's second round of
events is applied on top of the first (``events_applied`` counts both rounds; a state
restarted from empty would count only the second), and every state equals the offline fold
of all the user's events.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from devtools.broker import EmbeddedBroker
from streams.kafka.partitioning import user_partition
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

USERS = 120
EVENTS_PER_ROUND = 5
PARTITIONS = 4
TYPES = ("view", "click", "view", "add_to_cart", "purchase", "view")


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    settings = isolated_settings(broker.url, tmp_path, topic_partitions=PARTITIONS,
                                 standby_replicas=1, **FAST_GROUP)
    create_topics(settings)
    return settings


def round_of_events(start_ms: int, round_no: int) -> list[dict[str, Any]]:
    return [
        {"event_id": f"tw-{u}-{round_no}-{n}", "event_type": TYPES[(u + n) % len(TYPES)],
         "user_id": f"tw-user-{u}", "item_id": f"item-{(u * 7 + n + round_no) % 41}",
         "timestamp": start_ms + (round_no * EVENTS_PER_ROUND + n) * 1000 + u,
         "session_id": f"tw-s-{u}"}
        for n in range(EVENTS_PER_ROUND) for u in range(USERS)
    ]


def send(settings: Settings, events: list[dict[str, Any]]) -> None:
    produce(settings, [(settings.topic_for(e["event_type"]), e["user_id"].encode(),
                        orjson.dumps(e)) for e in events])


def doc_on(worker: WorkerProcess, user: str) -> dict[str, Any] | None:
    status, doc = worker.get(f"/users/{user}")
    return doc if status == 200 else None


def test_killed_workers_partitions_and_state_move_to_the_survivor(
    settings: Settings, workers: list[WorkerProcess]
) -> None:
    victim, survivor = workers
    for worker in workers:
        worker.wait_ready()
    start_ms = int(time.time() * 1000) - 600_000
    first = round_of_events(start_ms, 0)
    send(settings, first)
    expected = offline_states(first, settings)

    def everyone_applied_somewhere() -> bool:
        # A user's state is served by the worker that owns its partition (a standby copy
        # on the other worker may lag), so ask both.
        return all(any(state_matches(doc_on(w, user), state) for w in workers)
                   for user, state in expected.items())

    wait_for(everyone_applied_somewhere, 45, "the first round applied", interval_s=0.3)
    # Both workers owned partitions: each produced recommendations.
    emitted = [sum(metric_values(w.base_url, "streamrec_recommendations_emitted_total")
                   .values()) for w in workers]
    assert all(n > 0 for n in emitted), f"one worker did no work: {emitted}"
    assert {user_partition(user, PARTITIONS) for user in expected} == set(range(PARTITIONS))

    victim.kill()
    second = round_of_events(start_ms, 1)
    send(settings, second)
    expected = offline_states(first + second, settings)

    def survivor_has_everything() -> bool:
        if survivor.process.poll() is not None:
            raise AssertionError(f"the survivor exited:\n{survivor.log_tail()}")
        return all(state_matches(doc_on(survivor, user), state)
                   for user, state in expected.items())

    wait_for(survivor_has_everything, 60, "the survivor to serve every user's whole state",
             interval_s=0.5)
    for user in expected:
        doc = doc_on(survivor, user)
        assert doc is not None and doc["events_applied"] == 2 * EVENTS_PER_ROUND, user
        assert doc["last_recommendation"]["trigger"]["event_id"] == (
            expected[user].newest_event.event_id)
    assert survivor.get("/readyz")[0] == 200
