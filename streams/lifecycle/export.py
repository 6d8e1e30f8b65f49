"""Export a window of the event stream (and of the attribution log) to JSON-lines files.

``streamrec export-events --since 7d --out FILE`` writes every valid event of the input topics
(views, clicks, purchases, searches) from the last 7 days, one JSON object per line in the
stream's event schema, oldest first: exactly what ``streamrec train --events FILE`` reads
(:func:`models.data.events.load_event_sessions`; searches name no item and are skipped there).

How the window is read, on any broker:

* **where to start**: for each partition, the first offset whose record timestamp is at or
  after ``now - DURATION`` (Kafka's ListOffsets by time, ``offsets_for_times``). The embedded
  Tansu broker answers that with offset 0, so it is only a lower bound here: every record
  stamped before the window is skipped as it is read;
* **where to stop**: the partition's end when the export starts, exact on every broker
  (:func:`streams.kafka.compacted.exact_ends`: Tansu's ListOffsets(latest) is wrong). Records
  produced while the export runs are left for the next one;
* **what is kept**: records the worker's codec accepts
  (:func:`schemas.events.decode_event` with the settings' limits, the export's start as
  "now"; the rest are skipped and counted by reason) whose *event time* is also inside the
  window (a late delivery of an older event is counted as outside the window), each
  ``event_id`` once (the topics are at-least-once; repeats are counted as duplicates).

Lines are sorted by event time (ties by ``event_id``) and written to a temporary file that is
renamed into place, so a crashed export never leaves a half file under the real name.
``--feedback FILE`` writes the window of the attribution log the same way: served records
(by ``generated_at``) and attributions (by event time), deduplicated, as their JSON records.

Reading is aiokafka (the worker's client, outside any consumer group); nothing here imports
PyTorch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from schemas.errors import SchemaViolationError
from schemas.events import DecodeLimits, Event, Rejection, decode_event
from schemas.feedback import Feedback, Served, decode_feedback, encode_feedback
from streams.errors import BrokerUnavailableError, StreamrecError
from streams.kafka.clients import aiokafka_auth
from streams.settings import Settings

log = logging.getLogger(__name__)

READ_IDLE_TIMEOUT_S: Final = 60.0
"""A read that gets no record for this long while short of the end offsets fails."""
METADATA_TIMEOUT_S: Final = 10.0
MAX_RECORDS: Final = 5000
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


class ExportError(StreamrecError):
    """An export (or a report) could not read its topics or write its file: the message
    names the topic or path and what to do (create the topics with ``streamrec topics
    create``, check the broker, pick a writable output path)."""


class InvalidDurationError(StreamrecError, ValueError):
    """A duration is not a whole number followed by a unit: use e.g. ``30m``, ``24h``,
    ``7d`` (units s, m, h, d, w)."""


def parse_duration(text: str) -> float:
    """Seconds in ``30m``, ``24h``, ``7d`` (units s, m, h, d, w; a positive whole number).

    >>> parse_duration("30m"), parse_duration("7d")
    (1800.0, 604800.0)
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise InvalidDurationError(
            f"{text!r} is not a duration: use a positive whole number and a unit, e.g. 30m, "
            "24h, 7d (units s, m, h, d, w)")
    return float(int(match.group(1)) * _UNIT_S[match.group(2)])


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True, slots=True)
class TopicRecord:
    """One record read back from a topic."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None  # the Kafka record timestamp; None when the record had none
    key: bytes | None
    value: bytes | None


def read_topics(settings: Settings, topics: Sequence[str], since_ms: int | None = None,
                idle_timeout_s: float = READ_IDLE_TIMEOUT_S) -> list[TopicRecord]:
    """Every record of ``topics`` stamped at or after ``since_ms`` (None: from the start),
    up to the exact end offsets when the read starts; partition by partition, each in offset
    order. Raises :class:`ExportError` (a missing topic, a stalled read) or
    :class:`~streams.errors.BrokerUnavailableError`."""
    return asyncio.run(_read(settings, topics, since_ms, idle_timeout_s))


async def _read(settings: Settings, topics: Sequence[str], since_ms: int | None,
                idle_timeout_s: float) -> list[TopicRecord]:
    from aiokafka.errors import KafkaError

    from streams.kafka.compacted import outside_group_consumer

    servers, auth = settings.bootstrap_servers, aiokafka_auth(settings)
    consumer = outside_group_consumer(servers, auth, client_id="streamrec-export")
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise BrokerUnavailableError(
            f"cannot reach the broker at {settings.broker_url}: {exc}; check "
            "STREAMREC_BROKER_URL and the TLS/SASL settings") from exc
    try:
        bounds: dict[Any, tuple[int, int]] = {}
        for topic in topics:
            bounds.update(await _bounds(consumer, topic, since_ms, servers, auth))
        return await _fetch_until(consumer, bounds, since_ms, idle_timeout_s)
    except KafkaError as exc:
        raise BrokerUnavailableError(
            f"reading {', '.join(topics)} from {settings.broker_url} failed: {exc}") from exc
    finally:
        await consumer.stop()


async def _bounds(consumer: Any, topic: str, since_ms: int | None, servers: Sequence[str],
                  auth: dict[str, Any]) -> dict[Any, tuple[int, int]]:
    """Partition -> (first offset to read, end offset) of one topic."""
    from aiokafka import TopicPartition

    from streams.kafka.compacted import exact_ends

    deadline = time.monotonic() + METADATA_TIMEOUT_S
    while True:
        await consumer._client.force_metadata_update()  # noqa: SLF001
        found = consumer.partitions_for_topic(topic)
        if found:
            break
        if time.monotonic() > deadline:
            raise ExportError(f"topic {topic!r} does not exist: create the topics with "
                              "'streamrec topics create' (or check the STREAMREC_TOPIC_* "
                              "settings)")
        await asyncio.sleep(0.2)
    partitions = [TopicPartition(topic, p) for p in sorted(found)]
    ends = await exact_ends(consumer, partitions, servers, auth)
    firsts = await consumer.beginning_offsets(partitions)
    starts = {tp: firsts[tp] for tp in partitions}
    if since_ms is not None:
        by_time = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
        for tp in partitions:
            hit = by_time.get(tp)
            starts[tp] = ends[tp.partition] if hit is None else max(firsts[tp], hit.offset)
    return {tp: (min(starts[tp], ends[tp.partition]), ends[tp.partition])
            for tp in partitions}


async def _fetch_until(consumer: Any, bounds: dict[Any, tuple[int, int]],
                       since_ms: int | None, idle_timeout_s: float) -> list[TopicRecord]:
    pending = {tp: end for tp, (start, end) in bounds.items() if start < end}
    if not pending:
        return []
    consumer.assign(list(pending))
    for tp in pending:
        consumer.seek(tp, bounds[tp][0])
    out: list[TopicRecord] = []
    last_progress = time.monotonic()
    while pending:
        batches = await consumer.getmany(*pending, timeout_ms=200, max_records=MAX_RECORDS)
        for tp, records in batches.items():
            end = pending.get(tp)
            if end is None:
                continue
            for record in records:
                if record.offset >= end:
                    break
                stamp = _stamp(record.timestamp)
                if since_ms is None or stamp is None or stamp >= since_ms:
                    out.append(TopicRecord(tp.topic, tp.partition, record.offset, stamp,
                                           record.key, record.value))
            if records:
                last_progress = time.monotonic()
        for tp in list(pending):
            if await consumer.position(tp) >= pending[tp]:
                del pending[tp]
        if pending and time.monotonic() - last_progress > idle_timeout_s:
            lagging = ", ".join(f"{tp.topic}[{tp.partition}] to offset {end}"
                                for tp, end in sorted(pending.items()))
            raise ExportError(f"no records for {idle_timeout_s:.0f} s while reading {lagging}: "
                              "is the broker healthy? Run the export again")
    out.sort(key=lambda r: (r.topic, r.partition, r.offset))
    return out


def _stamp(timestamp: int | None) -> int | None:
    """A record timestamp, None for Kafka's "no timestamp" (-1)."""
    return timestamp if timestamp is not None and timestamp >= 0 else None


# --------------------------------------------------------------------------- selecting
@dataclass
class EventSelection:
    """The valid, in-window, distinct events of a read, oldest first, and what was left."""

    events: list[Event] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)  # reason code -> records
    duplicates: int = 0
    outside_window: int = 0

    @property
    def skipped(self) -> int:
        """Records the codec rejected."""
        return sum(self.rejected.values())


def select_events(records: Iterable[TopicRecord], limits: DecodeLimits, since_ms: int,
                  now_ms: int) -> EventSelection:
    """Decode ``records`` (read from the input topics) as the worker does, with ``now_ms``
    as the clock; keep each ``event_id`` once among events whose event time is at or after
    ``since_ms``; sort by (event time, event_id)."""
    selection = EventSelection()
    seen: set[str] = set()
    for record in records:
        decoded = decode_event(record.value, record.topic, limits, now_ms)
        if isinstance(decoded, Rejection):
            selection.rejected[str(decoded.reason)] += 1
            continue
        if decoded.timestamp_ms < since_ms:
            selection.outside_window += 1
            continue
        if decoded.event_id in seen:
            selection.duplicates += 1
            continue
        seen.add(decoded.event_id)
        selection.events.append(decoded)
    selection.events.sort(key=lambda e: (e.timestamp_ms, e.event_id))
    return selection


@dataclass
class FeedbackSelection:
    """The valid, distinct feedback records of a read, oldest first, and what was left."""

    records: list[Feedback] = field(default_factory=list)
    skipped: int = 0
    duplicates: int = 0
    outside_window: int = 0


def feedback_identity(record: Feedback) -> tuple[str, str]:
    """What makes a feedback record unique (the log is at-least-once)."""
    if isinstance(record, Served):
        return "served", record.recommendation_id
    return "attribution", record.attribution_id


def select_feedback(records: Iterable[TopicRecord], since_ms: int | None = None
                    ) -> FeedbackSelection:
    """Decode feedback records; keep each served record and attribution once (the first
    read), and with ``since_ms`` only those whose own time is at or after it; sort by time.
    Records that break ``feedback.schema.json`` are skipped and counted."""
    selection = FeedbackSelection()
    seen: set[tuple[str, str]] = set()
    for record in records:
        try:
            decoded = decode_feedback(record.value)
        except SchemaViolationError as exc:
            selection.skipped += 1
            log.debug("skipped %s[%d]@%d: %s", record.topic, record.partition, record.offset,
                      exc)
            continue
        if since_ms is not None and decoded.time_ms < since_ms:
            selection.outside_window += 1
            continue
        identity = feedback_identity(decoded)
        if identity in seen:
            selection.duplicates += 1
            continue
        seen.add(identity)
        selection.records.append(decoded)
    selection.records.sort(key=lambda r: (r.time_ms, *feedback_identity(r)))
    return selection


# --------------------------------------------------------------------------- writing
def write_json_lines(path: Path, lines: Iterable[bytes]) -> int:
    """Write one JSON document per line to ``path`` (through a temporary file renamed into
    place); returns the number of lines."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial")
    count = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as handle:
            for line in lines:
                handle.write(line)
                handle.write(b"\n")
                count += 1
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ExportError(f"cannot write {path}: {exc}; pick a writable path") from exc
    return count


def event_lines(events: Iterable[Event]) -> Iterable[bytes]:
    """Events in the stream's event schema (integer ms timestamps), one JSON line each."""
    return (orjson.dumps(event.to_json_dict()) for event in events)


def feedback_lines(records: Iterable[Feedback]) -> Iterable[bytes]:
    """Feedback records as their topic JSON, one line each."""
    return (encode_feedback(record)[1] for record in records)


# --------------------------------------------------------------------------- the export
@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote and skipped."""

    out: Path
    since_ms: int
    until_ms: int  # the export's start: records produced later are not in it
    events_written: int
    skipped: dict[str, int]  # rejected records by reason code
    duplicates: int
    outside_window: int
    feedback_out: Path | None = None
    feedback_written: int = 0
    feedback_skipped: int = 0

    def describe(self) -> str:
        """A one-paragraph summary for stderr."""
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items())) or "none"
        text = (f"exported {self.events_written} events to {self.out}; skipped "
                f"{sum(self.skipped.values())} invalid ({reasons}), {self.duplicates} "
                f"duplicates, {self.outside_window} older than the window")
        if self.feedback_out is not None:
            text += (f"; {self.feedback_written} feedback records to {self.feedback_out} "
                     f"({self.feedback_skipped} invalid skipped)")
        return text


def export_events(settings: Settings, since_s: float, out: Path,
                  feedback_out: Path | None = None, now_ms: int | None = None) -> ExportSummary:
    """Export the last ``since_s`` seconds of events to ``out`` (and of feedback to
    ``feedback_out``); see the module docstring."""
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    since_ms = now - int(since_s * 1000)
    records = read_topics(settings, settings.input_topics, since_ms)
    selection = select_events(records, settings.decode_limits(), since_ms, now)
    written = write_json_lines(out, event_lines(selection.events))
    feedback_written = feedback_skipped = 0
    if feedback_out is not None:
        feedback = select_feedback(read_topics(settings, [settings.topic_feedback], since_ms),
                                   since_ms)
        feedback_written = write_json_lines(feedback_out, feedback_lines(feedback.records))
        feedback_skipped = feedback.skipped
    return ExportSummary(out=Path(out), since_ms=since_ms, until_ms=now,
                         events_written=written, skipped=dict(selection.rejected),
                         duplicates=selection.duplicates,
                         outside_window=selection.outside_window, feedback_out=feedback_out,
                         feedback_written=feedback_written, feedback_skipped=feedback_skipped)

