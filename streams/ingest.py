"""Stage 1: decode and validate raw input messages, dead-letter the bad ones, re-key by user.

Producers may key their events any way they like. Valid events are grouped by the partition
that owns their ``user_id`` (:mod:`streams.partitioning`) and forwarded to the internal
``events-by-user`` topic as one bundle per partition per micro-batch; state is only ever
touched downstream of that re-keying.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import orjson

from schemas.codecs import DecodeLimits, Event, EventType, Rejection, decode_event
from streams.partitioning import user_partition


@dataclass(frozen=True, slots=True)
class RawMessage:
    """An input message as it came off Kafka."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input message and why."""

    rejection: Rejection
    message: RawMessage


@dataclass
class IngestBatch:
    """What one micro-batch of input messages turned into."""

    bundles: dict[int, list[Event]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    consumed: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class Pseudonymiser:
    """Replaces user ids by HMAC-SHA256(key, user_id), hex encoded. The key is never logged."""

    key: bytes = field(repr=False)

    def __call__(self, user_id: str) -> str:
        return hmac.new(self.key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def ingest(
    messages: Iterable[RawMessage],
    *,
    limits: DecodeLimits,
    partitions: int,
    now_ms: int,
    pseudonymise: Pseudonymiser | None = None,
) -> IngestBatch:
    """Decode every message; group valid events by owning partition, collect dead letters."""
    batch = IngestBatch()
    for message in messages:
        decoded = decode_event(message.value, message.topic, limits, now_ms)
        if isinstance(decoded, Rejection):
            batch.dead_letters.append(DeadLetter(decoded, message))
            counter_key = (message.topic, "invalid")
        else:
            if pseudonymise is not None:
                decoded = replace(decoded, user_id=pseudonymise(decoded.user_id))
            partition = user_partition(decoded.user_id, partitions)
            batch.bundles.setdefault(partition, []).append(decoded)
            counter_key = (message.topic, decoded.event_type)
        batch.consumed[counter_key] = batch.consumed.get(counter_key, 0) + 1
    return batch


def encode_bundle(events: Iterable[Event]) -> bytes:
    """Validated events for one partition, as one internal-topic message."""
    return orjson.dumps([event.to_json_dict() for event in events])


def decode_bundle(payload: bytes) -> list[Event]:
    """Inverse of :func:`encode_bundle` (trusted input: it was validated at ingestion)."""
    return [
        Event(
            event_id=item["event_id"],
            event_type=EventType(item["event_type"]),
            user_id=item["user_id"],
            item_id=item["item_id"],
            timestamp_ms=item["timestamp"],
            session_id=item.get("session_id"),
            properties=item.get("properties"),
        )
        for item in orjson.loads(payload)
    ]
