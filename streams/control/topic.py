"""The control topic as the commands see it: the whole topic read once into a
:class:`ControlSnapshot`, and one record written and acknowledged.

The topic (``STREAMREC_TOPIC_CONTROL``) is log-compacted with one partition, so its newest
record per key is the state: the :class:`~schemas.control.Promotion` under ``promotion`` and
one :class:`~schemas.control.Experiment` under each ``experiment/<name>``. Reading it means
reading every record up to the end offset seen at the start, exactly (the embedded Tansu
broker misreports ListOffsets(latest); :func:`streams.kafka.compacted.exact_ends` corrects
it), and folding them with :meth:`ControlSnapshot.apply`, the same fold the workers use
(:mod:`streams.control.follow`). Records that break ``control.schema.json`` are logged and
skipped: the key's previous record stays in force.

Writers read, decide, then write (``models promote`` takes the history from the snapshot it
read). Two operators acting on the same key at the same moment can therefore lose one
update; the commands are for people, one at a time, and every write is logged by the broker.

>>> snapshot = ControlSnapshot.empty().apply(
...     Promotion("sessattn-0123456789ab", (), 1, "promote"))
>>> snapshot.versions_needed(), snapshot.running()
(frozenset({'sessattn-0123456789ab'}), None)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.control import (
    TRENDING_VERSION,
    ControlRemoved,
    Experiment,
    Promotion,
    decode_control,
    encode_control,
)
from schemas.events import Rejection
from streams.control import ControlTopicError
from streams.kafka.clients import aiokafka_auth, librdkafka_config
from streams.kafka.compacted import (
    exact_ends,
    fetch,
    outside_group_consumer,
    reached,
    wait_for_partitions,
)
from streams.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT_S: Final = 20.0
"""Longest a command waits to read the topic or to have a record acknowledged."""
MAX_RECORDS: Final = 500


@dataclass(frozen=True)
class ControlSnapshot:
    """What the control topic says now: the promotion and every experiment, by name."""

    promotion: Promotion | None
    experiments: Mapping[str, Experiment]

    @classmethod
    def empty(cls) -> ControlSnapshot:
        """An empty topic: nothing promoted, no experiment."""
        return cls(None, MappingProxyType({}))

    def running(self) -> Experiment | None:
        """The running experiment (the commands allow one at a time; should records written
        by other means hold several, the one started last, by start time then name)."""
        running = [e for e in self.experiments.values() if e.is_running]
        return max(running, key=lambda e: (e.started_at_ms, e.name), default=None)

    def versions_needed(self) -> frozenset[str]:
        """Registry versions a worker must have loaded: the promoted one and the running
        experiment's variants and shadow (``trending`` is no model, so not one of them)."""
        needed: set[str] = set()
        if self.promotion is not None:
            needed.add(self.promotion.version)
        experiment = self.running()
        if experiment is not None:
            needed |= experiment.versions()
        needed.discard(TRENDING_VERSION)
        return frozenset(needed)

    def apply(self, record: Promotion | Experiment | ControlRemoved) -> ControlSnapshot:
        """This snapshot with one more record of the topic applied."""
        if isinstance(record, Promotion):
            return ControlSnapshot(record, self.experiments)
        if isinstance(record, Experiment):
            return ControlSnapshot(self.promotion,
                                   MappingProxyType({**self.experiments, record.name: record}))
        name = record.experiment_name
        if name is None:
            return ControlSnapshot(None, self.experiments)
        rest = {key: value for key, value in self.experiments.items() if key != name}
        return ControlSnapshot(self.promotion, MappingProxyType(rest))


def apply_records(snapshot: ControlSnapshot, records: Iterable[Any]) -> ControlSnapshot:
    """``snapshot`` with Kafka records (``key``, ``value``, ``topic``, ``partition``,
    ``offset``) applied in order; a record that does not decode is logged and skipped."""
    for record in records:
        outcome = decode_control(record.key, record.value)
        if isinstance(outcome, Rejection):
            log.warning("skipped control record %s[%d]@%d (%s: %s); the key's previous record, "
                        "if any, stays in force", record.topic, record.partition,
                        record.offset, outcome.reason.value, outcome.detail)
            continue
        snapshot = snapshot.apply(outcome)
    return snapshot


async def read_to_end(consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition],
                      ends: Mapping[int, int]) -> ControlSnapshot:
    """Every record from the consumer's positions up to ``ends``, folded from empty."""
    snapshot = ControlSnapshot.empty()
    while not await reached(consumer, partitions, ends):
        snapshot = apply_records(snapshot, await fetch(consumer, MAX_RECORDS))
    return snapshot


def read_control_snapshot(settings: Settings, *, timeout_s: float = DEFAULT_TIMEOUT_S
                          ) -> ControlSnapshot:
    """The whole control topic, read to its exact end now. Synchronous (from async code,
    call it in a thread).

    Raises :class:`~streams.control.ControlTopicError` when the broker does not answer or the
    topic does not exist within ``timeout_s``."""
    servers, kwargs = settings.bootstrap_servers, aiokafka_auth(settings)
    topic = settings.topic_control

    async def read() -> ControlSnapshot:
        consumer = outside_group_consumer(servers, kwargs, client_id="streamrec-control-cli")
        try:
            await consumer.start()
        except Exception as exc:  # aiokafka's connection errors share no base class
            await consumer.stop()
            raise ControlTopicError(
                f"cannot read the control topic {topic!r}: no broker answered at "
                f"{settings.broker_url} ({exc})") from exc
        try:
            partitions = await _partitions(consumer, topic, timeout_s / 2)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await exact_ends(consumer, partitions, servers, kwargs)
            return await read_to_end(consumer, partitions, ends)
        finally:
            await consumer.stop()

    try:
        return _run_sync(lambda: asyncio.wait_for(read(), timeout_s))
    except TimeoutError as exc:
        raise ControlTopicError(
            f"reading the control topic {topic!r} at {settings.broker_url} took more than "
            f"{timeout_s:.0f} s") from exc


def publish_control(settings: Settings, record: Promotion | Experiment, *,
                    timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Write ``record`` to the control topic and wait for the broker's acknowledgement
    (``acks=all``). Raises :class:`~streams.control.ControlTopicError` when it was not
    acknowledged within ``timeout_s`` (then it may or may not have been written: read the
    topic before trying again), and :class:`~schemas.control.InvalidControlRecordError` for
    a record that breaks the schema (nothing is sent)."""
    from confluent_kafka import KafkaException, Producer

    key, value = encode_control(record)
    producer = Producer(librdkafka_config(
        settings, acks="all", **{"message.timeout.ms": max(1, int(timeout_s * 1000)),
                                 "client.id": "streamrec-control-cli"}))
    outcome: list[Any] = []

    def report(error: Any, message: Any) -> None:
        outcome.append(error)

    topic = settings.topic_control
    try:
        producer.produce(topic, key=key, value=value, on_delivery=report)
    except (KafkaException, BufferError) as exc:
        raise ControlTopicError(f"cannot write to the control topic {topic!r}: {exc}") from exc
    producer.flush(timeout_s + 5.0)
    if not outcome:
        raise ControlTopicError(
            f"the broker at {settings.broker_url} did not acknowledge the {record.key} record "
            f"on {topic!r} within {timeout_s:.0f} s")
    if outcome[0] is not None:
        raise ControlTopicError(
            f"the broker at {settings.broker_url} refused the {record.key} record on "
            f"{topic!r}: {outcome[0]} (does the topic exist? 'streamrec topics create')")
    log.info("wrote %s to %s", record.key, topic)


async def _partitions(consumer: AIOKafkaConsumer, topic: str, timeout_s: float
                      ) -> list[TopicPartition]:
    try:
        return await asyncio.wait_for(wait_for_partitions(consumer, topic, "control"),
                                      timeout_s)
    except TimeoutError as exc:
        raise ControlTopicError(
            f"the control topic {topic!r} does not exist; create it with 'streamrec topics "
            f"create' (STREAMREC_TOPIC_CONTROL names it)") from exc




def _run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code, in a fresh event loop (on a
    helper thread when this thread already runs one)."""

    async def main() -> T:
        return await make()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()
