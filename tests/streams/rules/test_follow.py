"""The rules reader against a real broker: every rule in the topic reaches the book, live
changes and tombstones follow, and a restart reads the whole topic again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from devtools.broker import EmbeddedBroker
from schemas.rules import Boost, ExcludeItems, ExcludePurchased, Rule, encode_rule
from streams.kafka.topics import create_topics
from streams.rules.book import RuleBook
from streams.rules.follow import follow_rules
from streams.settings import Settings
from tests.support import isolated_settings, produce

SETTINGS_RULE = Boost(rule_id="promo", brands=("Apera",), factor=1.5)
FRESH = ExcludePurchased(rule_id="fresh", days=30.0)
RECALL = ExcludeItems(rule_id="recall", items=tuple(f"sku-{n}" for n in range(500)))
PROMO = Boost(rule_id="promo", brands=("Apera",), factor=3.0)


def publish(settings: Settings, records: list[Rule | tuple[str, bytes | None]]) -> None:
    produce(settings, [
        (settings.topic_rules, r[0].encode(), r[1]) if isinstance(r, tuple)
        else (settings.topic_rules, r.rule_id.encode(), encode_rule(r))
        for r in records])


async def eventually(predicate: Callable[[], bool], what: str, timeout_s: float = 30.0
                     ) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def test_the_rules_topic_reaches_the_book_live(broker: EmbeddedBroker, tmp_path: Path
                                               ) -> None:
    settings = isolated_settings(broker.url, tmp_path)
    create_topics(settings)
    # Before any reader runs: rules, a rule deleted again, a record that breaks the schema.
    publish(settings, [FRESH, RECALL, ExcludeItems(rule_id="gone", items=("x",)),
                       ("gone", None), PROMO,
                       ("broken", orjson.dumps({"rule_id": "broken", "kind": "boost"}))])

    async def scenario() -> None:
        book = RuleBook([SETTINGS_RULE])
        follow = asyncio.create_task(follow_rules(
            book, settings.bootstrap_servers, {}, topic=settings.topic_rules))
        try:
            await eventually(lambda: book.loaded, "the whole topic read")
            # One swap with everything the topic held when the reader started.
            assert dict(book.topic_rules) == {"fresh": FRESH, "recall": RECALL,
                                              "promo": PROMO}
            assert book.version == 1
            assert book.current().rules == (FRESH, PROMO, RECALL)

            # Live: an update, a tombstone, a new rule; a bad update changes nothing.
            stronger = Boost(rule_id="recall", brands=("Apera",), factor=4.0)
            await asyncio.to_thread(publish, settings, [
                ("promo", None), ("fresh", b'{"rule_id": "fresh", "kind": "nope"}'),
                stronger])
            await eventually(lambda: book.current().rule("recall") == stronger,
                             "the live changes")
            assert book.current().rules == (FRESH, SETTINGS_RULE, stronger)
            assert book.current().exclude_purchased_days(None) == 30.0
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)

        # A restarted worker reads it all again, tombstones included.
        again = RuleBook([SETTINGS_RULE])
        follow = asyncio.create_task(follow_rules(
            again, settings.bootstrap_servers, {}, topic=settings.topic_rules))
        try:
            await eventually(lambda: again.loaded, "the topic read after a restart")
            assert again.current().rules == book.current().rules
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)

    asyncio.run(scenario())


def test_an_empty_or_missing_topic_leaves_the_settings_rules(
    broker: EmbeddedBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = isolated_settings(broker.url, tmp_path)
    caplog.set_level(logging.WARNING, logger="streams.rules.follow")

    async def scenario() -> None:
        book = RuleBook([SETTINGS_RULE])
        follow = asyncio.create_task(follow_rules(
            book, settings.bootstrap_servers, {}, topic=settings.topic_rules))
        try:
            await eventually(lambda: "not found yet" in caplog.text, "the reader waiting")
            assert not book.loaded and book.current().rules == (SETTINGS_RULE,)
            await asyncio.to_thread(create_topics, settings)
            await eventually(lambda: book.loaded, "the empty topic read")
            assert book.current().rules == (SETTINGS_RULE,)
            await asyncio.to_thread(publish, settings, [FRESH])
            await eventually(lambda: book.current().rule("fresh") == FRESH, "a first rule")
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)

    asyncio.run(scenario())
