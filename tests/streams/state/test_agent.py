"""The state agent in process: a real Faust app and RocksDB tables, a recording producer.

No broker: the agent's tables live in RocksDB on disk (opened per partition by Faust's store,
as in a running worker) and its records go to a producer that records what it is given and
acknowledges it with offsets, as aiokafka does. One micro-batch through ``process`` must
leave exactly the state, changelog and recommendations the flow promises.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from schemas.events import Event, EventType
from streams.app import create_worker, state_bounds
from streams.ingest.batch import Bundle, encode_bundle
from streams.ops.metrics import create_metrics
from streams.settings import load_settings
from streams.state.agent import StateAgent, StateConfig
from streams.state.batch import UserRecord
from streams.state.store import PartitionStore
from streams.state.user_state import UserState

PARTITION = 2


@dataclass
class RecordedBatch:
    records: list[tuple[bytes | None, bytes | None]] = field(default_factory=list)
    capacity: int = 3

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: None) -> object:
        if len(self.records) >= self.capacity:
            return None  # full: the caller starts a new batch, as with aiokafka
        self.records.append((key, value))
        return object()


@dataclass
class RecordingProducer:
    """The parts of aiokafka's producer the agent uses; every batch acknowledged at once."""

    partitions: int = 4
    sent: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = field(
        default_factory=dict)

    def _ensure_producer(self) -> RecordingProducer:
        return self

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> RecordedBatch:
        return RecordedBatch()

    async def send_batch(self, batch: RecordedBatch, topic: str, *, partition: int
                         ) -> asyncio.Future[Any]:
        log = self.sent.setdefault((topic, partition), [])
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(offset=len(log)))
        log.extend(batch.records)
        return future


def bundle_event(values: list[bytes]) -> Any:
    """What ``take_events`` yields: an event whose message came from PARTITION."""
    return [SimpleNamespace(value=value, message=SimpleNamespace(partition=PARTITION,
                                                                 timestamp=time.time()))
            for value in values]


@pytest.fixture
def harness(tmp_path: Path) -> tuple[StateAgent, RecordingProducer, Any]:
    settings = load_settings(broker_url="kafka://127.0.0.1:9", data_dir=tmp_path / "state",
                             top_k=5)
    worker = create_worker(settings, registry=CollectorRegistry())
    producer = RecordingProducer()
    agent = StateAgent(
        StateConfig.from_settings(settings), state_bounds(settings),
        create_metrics(CollectorRegistry()), users=worker.users, trending=worker.trending,
        scoring=worker.scoring, producer=producer,
        recommendations_topic=settings.topic_recommendations,
    )
    return agent, producer, worker


def test_one_micro_batch_writes_state_changelog_and_one_recommendation_per_user(
    harness: tuple[StateAgent, RecordingProducer, Any],
) -> None:
    agent, producer, worker = harness
    now = int(time.time() * 1000)
    events = [Event(f"e{i}", EventType.VIEW, f"u{i % 3}", f"sku-{i % 4}", now - 1000 + i)
              for i in range(9)]
    payloads = [encode_bundle(Bundle(events=events[:5])), encode_bundle(Bundle(events=events[5:]))]

    asyncio.run(agent.process(bundle_event(payloads)))

    users = PartitionStore(worker.users, PARTITION)
    stored = dict(zip(["u0", "u1", "u2"], users.get_many([b"u0", b"u1", b"u2"]), strict=True))
    for user, raw in stored.items():
        assert raw is not None, user
        record = UserRecord.from_bytes(raw)
        assert [item for item, _t, _ms in record.state.recent] == [
            e.item_id for e in events if e.user_id == user]
        assert orjson.loads(record.last_recommendation)["user_id"] == user

    changelog = producer.sent[(users.changelog_topic, PARTITION)]
    assert sorted(key for key, _ in changelog) == [b"u0", b"u1", b"u2"]
    recommendations = [orjson.loads(value) for (topic, _p), records in producer.sent.items()
                       if topic == "recommendations" for _key, value in records]
    assert sorted(r["user_id"] for r in recommendations) == ["u0", "u1", "u2"]
    assert all(r["fallback"] == "no_model" and r["items"] for r in recommendations)
    # what recovery starts from: the last changelog offset the batch reached
    assert users._store.persisted_offset(_tp(users)) == 2


def test_a_replayed_batch_changes_nothing(
    harness: tuple[StateAgent, RecordingProducer, Any],
) -> None:
    agent, _producer, worker = harness
    now = int(time.time() * 1000)
    payload = encode_bundle(Bundle(events=[Event("e1", EventType.CLICK, "u9", "sku-1", now)]))
    asyncio.run(agent.process(bundle_event([payload])))
    users = PartitionStore(worker.users, PARTITION)
    (first,) = users.get_many([b"u9"])
    asyncio.run(agent.process(bundle_event([payload])))
    (second,) = users.get_many([b"u9"])
    assert first is not None and second is not None
    assert UserRecord.from_bytes(first).state == UserRecord.from_bytes(second).state
    assert agent.metrics.duplicates_dropped._value.get() == 1


def test_an_erasure_deletes_the_user_and_tombstones_the_recommendation(
    harness: tuple[StateAgent, RecordingProducer, Any],
) -> None:
    agent, producer, worker = harness
    now = int(time.time() * 1000)
    asyncio.run(agent.process(bundle_event([encode_bundle(Bundle(
        events=[Event("e1", EventType.VIEW, "u5", "sku-1", now)]))])))
    asyncio.run(agent.process(bundle_event([encode_bundle(Bundle(erasures=["u5"]))])))
    users = PartitionStore(worker.users, PARTITION)
    assert users.get_many([b"u5"]) == [None]
    recommendations = [(key, value) for (topic, _p), records in producer.sent.items()
                       if topic == "recommendations" for key, value in records]
    assert recommendations[-1] == (b"u5", None)


def _tp(store: PartitionStore) -> Any:
    from faust.types import TP

    return TP(store.changelog_topic, store.partition)


def test_a_micro_batch_times_every_state_stage(
    harness: tuple[StateAgent, RecordingProducer, Any],
) -> None:
    agent, _producer, _worker = harness
    now = int(time.time() * 1000)
    payload = encode_bundle(Bundle(events=[Event("e1", EventType.VIEW, "u7", "sku-1", now)]))
    asyncio.run(agent.process(bundle_event([payload])))
    counts = {s.labels["stage"]: s.value for m in agent.metrics.stage_seconds.collect()
              for s in m.samples if s.name.endswith("_count")}
    assert counts == {"rekey_hop": 1, "state": 1, "scoring": 1, "scoring_wait": 1, "emit": 1,
                      "produce": 1}


def test_an_event_applied_directly_then_redelivered_through_the_hop_counts_once(
    harness: tuple[StateAgent, RecordingProducer, Any],
) -> None:
    """One user's events may arrive both ways (a producer's retry in another partition):
    dedup by event id holds across them, and the direct micro-batch has no rekey_hop."""
    agent, _producer, worker = harness
    now = int(time.time() * 1000)
    first = Event("e1", EventType.VIEW, "u3", "sku-1", now - 10)
    second = Event("e2", EventType.CLICK, "u3", "sku-2", now)
    asyncio.run(agent.apply_direct(PARTITION, [first]))
    counts = {s.labels["stage"]: s.value for m in agent.metrics.stage_seconds.collect()
              for s in m.samples if s.name.endswith("_count")}
    assert counts == {"state": 1, "scoring": 1, "scoring_wait": 1, "emit": 1, "produce": 1}
    asyncio.run(agent.process(bundle_event([encode_bundle(Bundle(events=[first, second]))])))
    (raw,) = PartitionStore(worker.users, PARTITION).get_many([b"u3"])
    assert raw is not None
    assert [item for item, _t, _ms in UserRecord.from_bytes(raw).state.recent] == [
        "sku-1", "sku-2"]
    assert agent.metrics.duplicates_dropped._value.get() == 1


def test_one_partition_is_never_worked_on_by_two_micro_batches_at_once(
    harness: tuple[StateAgent, RecordingProducer, Any],
) -> None:
    """The direct path (ingest actors) and the state agent's actor share a lock per
    partition; other partitions go on meanwhile."""
    agent, _producer, _worker = harness
    now = int(time.time() * 1000)
    running: dict[int, int] = {}
    most: dict[int, int] = {}
    overlapped_other_partition: list[bool] = []
    apply = agent._apply

    async def traced(partition: int, bundles: list[Bundle], started: float) -> None:
        running[partition] = running.get(partition, 0) + 1
        most[partition] = max(most.get(partition, 0), running[partition])
        overlapped_other_partition.append(sum(running.values()) > running[partition])
        await asyncio.sleep(0)  # a point where another micro-batch could get in
        await apply(partition, bundles, started)
        running[partition] -= 1

    agent._apply = traced  # type: ignore[method-assign]

    async def together() -> None:
        await asyncio.gather(
            agent.apply_direct(PARTITION, [Event("d1", EventType.VIEW, "u1", "sku-1", now)]),
            agent.process(bundle_event([encode_bundle(Bundle(
                events=[Event("r1", EventType.VIEW, "u1", "sku-2", now)]))])),
            agent.apply_direct(PARTITION, [Event("d2", EventType.VIEW, "u2", "sku-3", now)]),
            agent.apply_direct(1, [Event("o1", EventType.VIEW, "u4", "sku-1", now)]),
        )

    asyncio.run(together())
    assert most == {PARTITION: 1, 1: 1}
    assert any(overlapped_other_partition)  # the trace does see concurrency where allowed


def test_direct_events_queued_for_the_lock_are_applied_as_one_micro_batch(
    harness: tuple[StateAgent, RecordingProducer, Any],
) -> None:
    """Three input topics' actors of one partition: while one micro-batch runs, the other
    two wait; they are then applied together, and each call returns once they are."""
    agent, _producer, worker = harness
    now = int(time.time() * 1000)
    applied: list[list[str]] = []
    apply = agent._apply

    async def traced(partition: int, bundles: list[Bundle], started: float) -> None:
        applied.append([e.event_id for b in bundles for e in b.events])
        await asyncio.sleep(0)  # the others queue up meanwhile
        await apply(partition, bundles, started)

    agent._apply = traced  # type: ignore[method-assign]

    def direct(event_id: str, user: str) -> Any:
        return agent.apply_direct(PARTITION, [Event(event_id, EventType.VIEW, user, "sku-1",
                                                    now)])

    async def together() -> None:
        await asyncio.gather(direct("v1", "u1"), direct("c1", "u2"), direct("p1", "u1"))

    asyncio.run(together())
    assert applied == [["v1"], ["c1", "p1"]]
    users = PartitionStore(worker.users, PARTITION)
    assert all(raw is not None for raw in users.get_many([b"u1", b"u2"]))


def test_a_failed_micro_batch_fails_every_call_whose_events_it_held(
    harness: tuple[StateAgent, RecordingProducer, Any],
) -> None:
    agent, _producer, _worker = harness
    now = int(time.time() * 1000)
    calls: list[int] = []

    async def failing(partition: int, bundles: list[Bundle], started: float) -> None:
        calls.append(len(bundles))
        await asyncio.sleep(0)
        if len(calls) == 2:
            raise RuntimeError("broker gone")

    agent._apply = failing  # type: ignore[method-assign]

    async def together() -> list[Any]:
        return await asyncio.gather(*(
            agent.apply_direct(PARTITION, [Event(f"e{n}", EventType.VIEW, "u1", "sku-1",
                                                 now)])
            for n in range(3)), return_exceptions=True)

    outcomes = asyncio.run(together())
    assert calls == [1, 2]
    assert outcomes[0] is None
    assert [str(o) for o in outcomes[1:]] == ["broker gone", "broker gone"]
    assert agent.waiting == {}


def test_the_ttl_sweep_expires_old_users_and_leaves_unreadable_records(
    harness: tuple[StateAgent, RecordingProducer, Any],
) -> None:
    """A micro-batch looks at the next stored users (at least 8): those whose newest event
    is older than the TTL (30 days by default) are deleted and their recommendation
    tombstoned, in either record format; recent users stay, and so does a record whose
    newest event cannot be read."""
    from streams.state.user_state import apply_events

    agent, producer, worker = harness
    now = int(time.time() * 1000)
    day_ms = 86_400_000

    def state_bytes(user: str, age_days: int) -> bytes:
        event = Event(f"old-{user}", EventType.VIEW, user, "sku-1", now - age_days * day_ms)
        state = apply_events(None, [event], agent.bounds).state
        assert state is not None
        return state.to_bytes()

    legacy = state_bytes("gone-legacy", 45)
    users = PartitionStore(worker.users, PARTITION)
    users.write({
        b"gone": UserRecord(UserState.from_bytes(state_bytes("gone", 31))).to_bytes(),
        b"gone-legacy": len(legacy).to_bytes(4, "big") + legacy + b"REC",
        b"kept": UserRecord(UserState.from_bytes(state_bytes("kept", 29))).to_bytes(),
        b"unreadable": b"\x00\x00\x00\x05{bad}",
    })
    asyncio.run(agent.process(bundle_event([encode_bundle(Bundle(
        events=[Event("e1", EventType.VIEW, "fresh", "sku-2", now)]))])))

    stored = dict(zip([b"gone", b"gone-legacy", b"kept", b"unreadable", b"fresh"],
                      users.get_many([b"gone", b"gone-legacy", b"kept", b"unreadable",
                                      b"fresh"]), strict=True))
    assert stored[b"gone"] is None and stored[b"gone-legacy"] is None
    assert stored[b"kept"] is not None and stored[b"fresh"] is not None
    assert stored[b"unreadable"] == b"\x00\x00\x00\x05{bad}"
    tombstones = sorted(key for (topic, _p), records in producer.sent.items()
                        if topic == "recommendations" for key, value in records if value is None)
    assert tombstones == [b"gone", b"gone-legacy"]
    assert agent.metrics.users_expired._value.get() == 2
