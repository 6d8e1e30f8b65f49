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

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.events import Rejection
from schemas.rules import Rule, RuleRemoved, decode_rule
from streams.kafka.compacted import (
    exact_ends,
    fetch,
    keep_running,
    outside_group_consumer,
    reached,
    wait_for_partitions,
)
from streams.rules.book import RuleBook

log = logging.getLogger(__name__)

MAX_RECORDS = 500


async def follow_rules(
    book: RuleBook, bootstrap_servers: Sequence[str], client_kwargs: Mapping[str, Any], *,
    topic: str, fetch_max_wait_ms: int = 100,
) -> None:
    """Run until cancelled: keep ``book`` equal to the settings' rules plus ``topic``'s. A
    failure (broker gone, a bug) is logged and the topic is read again from the start."""
    await keep_running(lambda: _follow(book, topic, bootstrap_servers, client_kwargs,
                                       fetch_max_wait_ms), "rules")


async def _follow(book: RuleBook, topic: str, bootstrap_servers: Sequence[str],
                  client_kwargs: Mapping[str, Any], fetch_max_wait_ms: int) -> None:
    consumer = outside_group_consumer(bootstrap_servers, client_kwargs,
                                      client_id="streamrec-rules",
                                      fetch_max_wait_ms=fetch_max_wait_ms)
    await consumer.start()
    try:
        partitions = await wait_for_partitions(consumer, topic, "rules")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await exact_ends(consumer, partitions, bootstrap_servers, client_kwargs)
        snapshot: dict[str, Rule] = {}
        while not await reached(consumer, partitions, ends):
            for rule_id, rule in _changes(await fetch(consumer, MAX_RECORDS)).items():
                if rule is None:
                    snapshot.pop(rule_id, None)
                else:
                    snapshot[rule_id] = rule
        book.reset_topic(snapshot)
        while True:
            book.apply(_changes(await fetch(consumer, MAX_RECORDS)))
    finally:
        await consumer.stop()


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


