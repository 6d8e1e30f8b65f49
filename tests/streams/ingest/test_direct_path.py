"""Events already in their user's partition skip the events-by-user hop, when the worker owns
that partition; everything else (other partitions, erasures, partitions not owned) takes it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiokafka.errors import UnknownError
from prometheus_client import CollectorRegistry

from schemas.events import Event
from streams.ingest.agent import DirectPath, IngestAgent, IngestConfig
from streams.ingest.batch import decode_bundle
from streams.kafka.partitioning import user_partition
from streams.kafka.take import take_events
from streams.ops.metrics import Metrics, create_metrics
from streams.settings import Settings
from tests.streams.ingest.test_agent_stages import (
    OneBatch,
    RecordingTopic,
    message,
)

PARTITIONS = 4


def users_of(partition: int, count: int) -> list[str]:
    found = (f"user-{n}" for n in range(10_000))
    return [u for u in found if user_partition(u, PARTITIONS) == partition][:count]


def view(event_id: str, user: str) -> dict[str, Any]:
    return {"event_id": event_id, "event_type": "view", "user_id": user, "item_id": "sku-1",
            "timestamp": int(time.time() * 1000)}


def in_partition(topic: str, partition: int, documents: list[dict[str, Any]]) -> list[Any]:
    batch = [message(topic, offset, 0.01, doc) for offset, doc in enumerate(documents)]
    for event in batch:
        event.message.partition = partition
    return batch


class Recorder:
    def __init__(self, owned: set[int]) -> None:
        self.owned = owned
        self.applied: list[tuple[int, list[Event]]] = []

    async def apply(self, partition: int, events: list[Event]) -> None:
        self.applied.append((partition, events))

    def path(self) -> DirectPath:
        return DirectPath(owns=self.owned.__contains__, apply=self.apply)


def run(batch: list[Any], direct: DirectPath | None, topic_partitions: int = PARTITIONS
        ) -> tuple[Metrics, RecordingTopic]:
    settings = Settings(topic_partitions=topic_partitions, topic_user_erasure="user_erasure")
    metrics = create_metrics(CollectorRegistry())
    by_user = RecordingTopic()
    agent = IngestAgent(IngestConfig.from_settings(settings), metrics, by_user,
                        RecordingTopic(), direct, take=take_events)
    asyncio.run(agent(OneBatch(batch)))  # type: ignore[arg-type]
    return metrics, by_user


def routed(metrics: Metrics, path: str) -> float | None:
    return metrics.registry.get_sample_value("streamrec_events_routed_total", {"path": path})


def bundled_ids(by_user: RecordingTopic) -> dict[int, list[str]]:
    return {sent["partition"]: [e.event_id for e in decode_bundle(sent["value"]).events]
            for sent in by_user.sent}


def test_events_in_their_users_partition_are_applied_directly_the_rest_rekeyed() -> None:
    (mine_a, mine_b), (other,) = users_of(2, 2), users_of(1, 1)
    docs = [view("e1", mine_a), view("e2", other), view("e3", mine_b), view("e4", mine_a)]
    recorder = Recorder(owned={1, 2})
    metrics, by_user = run(in_partition("views", 2, docs), recorder.path())

    assert [(p, [e.event_id for e in evs]) for p, evs in recorder.applied] == [
        (2, ["e1", "e3", "e4"])]  # in arrival order, one micro-batch
    assert bundled_ids(by_user) == {1: ["e2"]}
    assert routed(metrics, "direct") == 3
    assert routed(metrics, "rekeyed") == 1


def test_events_the_broker_refused_on_the_direct_path_take_the_hop() -> None:
    (mine,) = users_of(2, 1)

    async def refused(partition: int, events: list[Event]) -> None:
        raise UnknownError("the broker refused the changelog records")

    _metrics, by_user = run(in_partition("views", 2, [view("e1", mine), view("e2", mine)]),
                            DirectPath(owns=lambda partition: True, apply=refused))
    assert bundled_ids(by_user) == {2: ["e1", "e2"]}  # and the ingest actor did not crash


def test_a_state_partition_this_worker_does_not_own_keeps_the_hop() -> None:
    docs = [view("e1", users_of(2, 1)[0])]
    recorder = Recorder(owned={0, 1, 3})
    metrics, by_user = run(in_partition("views", 2, docs), recorder.path())
    assert recorder.applied == []
    assert bundled_ids(by_user) == {2: ["e1"]}
    assert routed(metrics, "rekeyed") == 1
    assert routed(metrics, "direct") is None


def test_switched_off_every_event_takes_the_hop() -> None:
    docs = [view("e1", users_of(2, 1)[0]), view("e2", users_of(0, 1)[0])]
    metrics, by_user = run(in_partition("views", 2, docs), None)
    assert bundled_ids(by_user) == {2: ["e1"], 0: ["e2"]}
    assert routed(metrics, "rekeyed") == 2


def test_erasure_requests_always_take_the_hop() -> None:
    user = users_of(3, 1)[0]
    recorder = Recorder(owned={0, 1, 2, 3})
    metrics, by_user = run(in_partition("user_erasure", 3, [{"user_id": user}]),
                           recorder.path())
    assert recorder.applied == []
    (sent,) = by_user.sent
    assert sent["partition"] == 3
    assert decode_bundle(sent["value"]).erasures == [user]
    assert routed(metrics, "direct") is None


def test_dead_letters_are_unchanged_by_the_direct_path() -> None:
    user = users_of(2, 1)[0]
    batch = in_partition("views", 2, [view("e1", user)])
    bad = message("views", 9, 0.01, {"event_type": "view"})
    bad.message.partition = 2
    recorder = Recorder(owned={2})
    metrics = create_metrics(CollectorRegistry())
    dead = RecordingTopic()
    agent = IngestAgent(IngestConfig.from_settings(Settings(topic_partitions=PARTITIONS)),
                        metrics, RecordingTopic(), dead, recorder.path(), take=take_events)
    asyncio.run(agent(OneBatch([*batch, bad])))  # type: ignore[arg-type]
    assert [orjson.loads(d["value"])["reason"] for d in dead.sent] == ["missing_field"]
    assert [[e.event_id for e in evs] for _p, evs in recorder.applied] == [["e1"]]
