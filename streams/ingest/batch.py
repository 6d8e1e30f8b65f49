"""Stage 1: decode and validate raw input messages, dead-letter the bad ones, re-key by user.

Producers may key their events any way they like. Valid events are grouped by the partition
that owns their ``user_id`` (:mod:`streams.kafka.partitioning`) and forwarded to the internal
``events-by-user`` topic as one bundle per partition per micro-batch, except those that
already arrived in the partition owning their user (:func:`take_direct`: the ingest agent
applies them to that partition's state itself when its worker owns it).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import orjson

from schemas.contract import is_valid_id
from schemas.control import decode_control
from schemas.events import DecodeLimits, Event, EventType, Rejection, decode_event
from schemas.items import decode_item
from schemas.reasons import RejectReason
from schemas.rules import decode_rule
from streams.kafka.partitioning import user_partition


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
class Bundle:
    """Validated work for one user partition: events, and users to erase."""

    events: list[Event] = field(default_factory=list)
    erasures: list[str] = field(default_factory=list)


@dataclass
class IngestBatch:
    """What one micro-batch of input messages turned into."""

    bundles: dict[int, Bundle] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    consumed: dict[tuple[str, str], int] = field(default_factory=dict)

    def bundle(self, partition: int) -> Bundle:
        found = self.bundles.get(partition)
        if found is None:
            found = self.bundles[partition] = Bundle()
        return found


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
    erasure_topic: str | None = None,
    items_topic: str | None = None,
    rules_topic: str | None = None,
    control_topic: str | None = None,
) -> IngestBatch:
    """Decode every message; group valid events by owning partition, collect dead letters.

    Messages from ``erasure_topic`` are erasure requests (:func:`decode_erasure`) and are
    routed to the partition of the user they name, like events. Messages from
    ``items_topic`` are only validated here, so that a bad catalogue record is dead-lettered
    once — by the one worker whose group owns its partition; every worker's catalogue reader
    applies the good ones (:mod:`streams.catalog`). Messages from ``rules_topic`` and
    ``control_topic`` likewise (:mod:`streams.rules`, :mod:`streams.control`).
    """
    batch = IngestBatch()
    for message in messages:
        if message.topic == erasure_topic:
            _ingest_erasure(batch, message, partitions, pseudonymise)
            continue
        if message.topic == items_topic:
            _check(batch, message, decode_item(message.key, message.value), "item")
            continue
        if message.topic == rules_topic:
            _check(batch, message, decode_rule(message.key, message.value), "rule")
            continue
        if message.topic == control_topic:
            _check(batch, message, decode_control(message.key, message.value), "control")
            continue
        decoded = decode_event(message.value, message.topic, limits, now_ms)
        if isinstance(decoded, Rejection):
            batch.dead_letters.append(DeadLetter(decoded, message))
            counter_key = (message.topic, "invalid")
        else:
            if pseudonymise is not None:
                decoded = replace(decoded, user_id=pseudonymise(decoded.user_id))
            partition = user_partition(decoded.user_id, partitions)
            batch.bundle(partition).events.append(decoded)
            counter_key = (message.topic, decoded.event_type)
        batch.consumed[counter_key] = batch.consumed.get(counter_key, 0) + 1
    return batch


def take_direct(batch: IngestBatch, partition: int) -> list[Event]:
    """Take the events of ``partition``'s bundle out of ``batch`` and return them.

    Called with the input partition the batch's messages all came from: those events
    arrived in the partition that owns their user (their producer keyed them by user id),
    so that partition's state can take them without the hop through ``events-by-user``.
    Erasure requests stay in the bundle: they always take the hop.

    >>> batch = IngestBatch()
    >>> batch.bundle(1).erasures.append("u")
    >>> take_direct(batch, 1), take_direct(batch, 0), list(batch.bundles)
    ([], [], [1])
    """
    bundle = batch.bundles.get(partition)
    if bundle is None or not bundle.events:
        return []
    events, bundle.events = bundle.events, []
    if not bundle.erasures:
        del batch.bundles[partition]
    return events


def _check(batch: IngestBatch, message: RawMessage, decoded: object, kind: str) -> None:
    """A record of a topic every worker reads itself: only dead-letter it if bad."""
    if isinstance(decoded, Rejection):
        batch.dead_letters.append(DeadLetter(decoded, message))
        counter_key = (message.topic, "invalid")
    else:
        counter_key = (message.topic, kind)
    batch.consumed[counter_key] = batch.consumed.get(counter_key, 0) + 1


def _ingest_erasure(
    batch: IngestBatch,
    message: RawMessage,
    partitions: int,
    pseudonymise: Pseudonymiser | None,
) -> None:
    decoded = decode_erasure(message.value)
    if isinstance(decoded, Rejection):
        batch.dead_letters.append(DeadLetter(decoded, message))
        counter_key = (message.topic, "invalid")
    else:
        user_id = pseudonymise(decoded) if pseudonymise is not None else decoded
        batch.bundle(user_partition(user_id, partitions)).erasures.append(user_id)
        counter_key = (message.topic, "user_erasure")
    batch.consumed[counter_key] = batch.consumed.get(counter_key, 0) + 1


def decode_erasure(raw: bytes | None) -> str | Rejection:
    """An erasure request: ``{"user_id": "..."}`` (UTF-8 JSON). Returns the user id."""
    if not raw:
        return Rejection(RejectReason.EMPTY_PAYLOAD, "erasure request has no value")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(RejectReason.INVALID_JSON, f"erasure request is not JSON: {exc}")
    if not isinstance(document, dict):
        return Rejection(RejectReason.NOT_AN_OBJECT, "erasure request must be an object")
    user_id = document.get("user_id")
    if user_id is None:
        return Rejection(RejectReason.MISSING_FIELD, "erasure request needs user_id")
    if not isinstance(user_id, str):
        return Rejection(RejectReason.WRONG_TYPE, "user_id must be a string")
    if not is_valid_id(user_id):
        return Rejection(RejectReason.INVALID_ID,
                         "user_id must be 1-256 characters without control characters")
    return user_id


def encode_bundle(bundle: Bundle) -> bytes:
    """Validated work for one partition, as one internal-topic message."""
    return orjson.dumps({
        "events": [event.to_json_dict() for event in bundle.events],
        "erase": bundle.erasures,
    })


def decode_bundle(payload: bytes) -> Bundle:
    """Inverse of :func:`encode_bundle` (trusted input: it was validated at ingestion)."""
    document = orjson.loads(payload)
    return Bundle(
        events=[
            Event(
                event_id=item["event_id"],
                event_type=EventType(item["event_type"]),
                user_id=item["user_id"],
                item_id=item.get("item_id"),  # absent on a search
                timestamp_ms=item["timestamp"],
                session_id=item.get("session_id"),
                properties=item.get("properties"),
            )
            for item in document["events"]
        ],
        erasures=list(document["erase"]),
    )
