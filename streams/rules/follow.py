"""Keep the rule book current: read every partition of the ``rules`` topic, no consumer group.

Started by the worker as a Faust task, like the catalogue reader
(:mod:`streams.catalog.follow`): every worker applies every rule, so no group shares the
partitions out. Unlike the catalogue it keeps no local store and no offsets: the topic is
log-compacted and small (one record per rule, a handful to a few hundred), so reading it from
the beginning at every start costs milliseconds, and a fresh read cannot disagree with the
topic, where a stored copy could keep a rule whose tombstone was compacted away while the
worker was down.

At each (re)start the whole topic, up to the end offsets seen then (exact, from a fetch's high
watermark, see :mod:`streams.kafka.end_offsets`), is collected and swapped into the book at
once (:meth:`~streams.rules.book.RuleBook.reset_topic`); until then the book keeps what it
had. After that every batch of records is applied as it arrives. A rejected record (it breaks
``rule.schema.json``) is skipped and the rule's previous version stays in force; the ingest
agent dead-letters it once for the whole application.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from schemas.events import Rejection
from schemas.rules import Rule, RuleRemoved, decode_rule
from streams.kafka.end_offsets import exact_end_offsets
from streams.rules.book import RuleBook

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 200
METADATA_RETRY_S = 2.0
RESTART_DELAY_S = 5.0
MAX_RECORDS = 500


async def follow_rules(
    book: RuleBook, bootstrap_servers: Sequence[str], client_kwargs: Mapping[str, Any], *,
    topic: str, fetch_max_wait_ms: int = 100,
) -> None:
    """Run until cancelled: keep ``book`` equal to the settings' rules plus ``topic``'s. A
    failure (broker gone, a bug) is logged and the topic is read again from the start."""
    while True:
        try:
            await _follow(book, topic, bootstrap_servers, client_kwargs, fetch_max_wait_ms)
        except asyncio.CancelledError:
            raise
        except Exception:  # the rules must outlive any one failure
            log.exception("rules reader failed; reading the rules topic again in %.0f s",
                          RESTART_DELAY_S)
            await asyncio.sleep(RESTART_DELAY_S)


async def _follow(book: RuleBook, topic: str, bootstrap_servers: Sequence[str],
                  client_kwargs: Mapping[str, Any], fetch_max_wait_ms: int) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=list(bootstrap_servers), group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=fetch_max_wait_ms,
        client_id="streamrec-rules", **client_kwargs)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        reported = await consumer.end_offsets(partitions)
        exact = await exact_end_offsets(
            bootstrap_servers, {TP(tp.topic, tp.partition): end for tp, end in reported.items()},
            client_kwargs)
        ends = {TopicPartition(tp.topic, tp.partition): end for tp, end in exact.items()}
        snapshot: dict[str, Rule] = {}
        while not await _reached(consumer, ends):
            for rule_id, rule in _changes(await _fetch(consumer)).items():
                if rule is None:
                    snapshot.pop(rule_id, None)
                else:
                    snapshot[rule_id] = rule
        book.reset_topic(snapshot)
        while True:
            book.apply(_changes(await _fetch(consumer)))
    finally:
        await consumer.stop()


async def _fetch(consumer: AIOKafkaConsumer) -> list[Any]:
    batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_RECORDS)
    return [record for tp in sorted(batches, key=lambda t: t.partition)
            for record in batches[tp]]


def _changes(records: list[Any]) -> dict[str, Rule | None]:
    """The newest version of each rule the records name (None: removed)."""
    changes: dict[str, Rule | None] = {}
    for record in records:
        outcome = decode_rule(record.key, record.value)
        if isinstance(outcome, Rejection):
            log.warning("skipped rule record %s[%d]@%d (%s); the rule's previous version, if "
                        "any, stays in force", record.topic, record.partition, record.offset,
                        outcome.reason.value)
        elif isinstance(outcome, RuleRemoved):
            changes[outcome.rule_id] = None
        else:
            changes[outcome.rule_id] = outcome
    return changes


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, waiting (and saying so) while it does not exist yet."""
    warned = False
    while True:
        await consumer._client.force_metadata_update()  # noqa: SLF001
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if not warned:
            log.warning("rules topic %r not found yet; run 'streamrec topics create'", topic)
            warned = True
        await asyncio.sleep(METADATA_RETRY_S)
