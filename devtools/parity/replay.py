"""The live side of the parity check: held-out sessions replayed through a running worker in
lock step, so each recommendation read back reflects exactly one known prefix.

Every session is one user (``s<SessionId>``). Many sessions are in flight at once, but
within a session click ``k + 1`` is sent only once the recommendation whose
``trigger.event_id`` is click ``k``'s has been read back: that message ranks the prefix
ending at ``k``, and the case's target is click ``k + 1``. The last click of a session is
never sent (no case needs it). Events are re-stamped to now, strictly increasing within a
session, so the worker's time bounds accept them (the dataset is from 2014), none is late
and no session gap opens; their order is the dataset's.

Recommendations are read with confluent-kafka in a group of this run's own, from the
beginning of this run's own (isolated) topic.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from devtools.parity.dataset import Session
from devtools.parity.offline import CaseKey, list_rank
from devtools.producers import produce
from streams.clock import now_ms
from streams.errors import StreamrecError
from streams.kafka.clients import librdkafka_config
from streams.settings import Settings


class ReplayStalledError(StreamrecError):
    """No recommendation reflecting a sent event came back in time: the worker is not
    processing (read its log, kept with ``--keep-workdir``) or the machine is overloaded
    (raise ``--case-timeout`` or lower ``--concurrency``)."""


@dataclass(frozen=True, slots=True)
class LiveCase:
    """The recommendation the worker sent for one prefix."""

    items: tuple[str, ...]
    scores: tuple[float, ...]
    fallback: str | None
    rank: int | None
    seconds: float
    """From sending click ``k`` to reading back the recommendation it triggered."""


@dataclass
class ReplayResult:
    cases: dict[CaseKey, LiveCase]
    seconds: float
    events_sent: int
    unexpected: int
    """Recommendations read back that reflect no awaited event (there should be none)."""


@dataclass
class _InFlight:
    session: Session
    k: int = 0
    stamp_ms: int = 0
    sent_at: float = field(default_factory=time.monotonic)


def replay(settings: Settings, sessions: Sequence[Session], *, concurrency: int = 200,
           case_timeout_s: float = 60.0,
           progress: Callable[[int, int], None] | None = None) -> ReplayResult:
    """Replay ``sessions`` through the worker that serves ``settings``' topics (see the
    module docstring); returns one :class:`LiveCase` per case."""
    from confluent_kafka import Consumer, Producer

    producer = Producer(librdkafka_config(settings, **{"linger.ms": 1}))
    consumer = Consumer(librdkafka_config(settings, **{
        "group.id": f"streamrec-parity-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "session.timeout.ms": 6000, "max.poll.interval.ms": 600000,
        "heartbeat.interval.ms": 1000}))
    consumer.subscribe([settings.topic_recommendations])
    waiting = deque(s for s in sessions if len(s.clicks) >= 2)
    total = sum(len(s.clicks) - 1 for s in waiting)
    in_flight: dict[str, _InFlight] = {}
    cases: dict[CaseKey, LiveCase] = {}
    sent = unexpected = 0
    started = last_report = time.monotonic()

    def send(flight: _InFlight) -> None:
        nonlocal sent
        flight.stamp_ms = max(now_ms(), flight.stamp_ms + 1)
        event = flight.session.event(flight.k, flight.stamp_ms)
        produce(producer, settings.topic_for(event["event_type"]), event["user_id"].encode(),
                orjson.dumps(event))
        flight.sent_at = time.monotonic()
        sent += 1

    def refill() -> None:
        while waiting and len(in_flight) < concurrency:
            flight = _InFlight(waiting.popleft())
            in_flight[flight.session.user_id] = flight
            send(flight)

    try:
        refill()
        while in_flight:
            producer.poll(0)
            for message in consumer.consume(num_messages=500, timeout=0.05):
                value = message.value()
                if message.error() or value is None:
                    continue
                document = orjson.loads(value)
                flight = in_flight.get(document["user_id"])
                session = flight.session if flight is not None else None
                if (flight is None or session is None
                        or document["trigger"]["event_id"] != session.event_id(flight.k)):
                    unexpected += 1
                    continue
                cases[CaseKey(session.session_id, flight.k)] = _live_case(
                    document, session.clicks[flight.k + 1].item_id,
                    time.monotonic() - flight.sent_at)
                flight.k += 1
                if flight.k < len(session.clicks) - 1:
                    send(flight)
                else:
                    del in_flight[session.user_id]
            refill()
            now = time.monotonic()
            stalled = [f for f in in_flight.values() if now - f.sent_at > case_timeout_s]
            if stalled:
                raise ReplayStalledError(
                    f"{len(stalled)} sessions waited more than {case_timeout_s:.0f}s for the "
                    f"recommendation of their last event ({len(cases)} of {total} cases done)")
            if progress is not None and now - last_report >= 5.0:
                progress(len(cases), total)
                last_report = now
        producer.flush(10)
    finally:
        consumer.close()
    return ReplayResult(cases, time.monotonic() - started, sent, unexpected)


def _live_case(document: dict[str, Any], target: str, seconds: float) -> LiveCase:
    entries = document["items"]
    items = tuple(str(entry["item_id"]) for entry in entries)
    return LiveCase(items, tuple(float(entry["score"]) for entry in entries),
                    document.get("fallback"), list_rank(items, target), seconds)
