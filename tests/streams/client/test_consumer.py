"""RecommendationConsumer against the embedded broker: recommendation-shaped messages
(valid per recommendation.schema.json) and a tombstone, produced by an independent client,
come back decoded, in order per user, with the tombstone marked as an erasure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.client import RecommendationConsumer, RecommendationMessage
from streams.kafka.topics import create_topics
from streams.settings import Settings
from tests.streams.client.support import recommendation
from tests.support import isolated_settings, produce, wait_for


@pytest.fixture
def settings(broker: Any, tmp_path: Path) -> Settings:
    # short group timeouts: a first join on the embedded broker waits about half of them
    settings = isolated_settings(broker.url, tmp_path, topic_partitions=3,
                                 broker_session_timeout_s=4.0, broker_rebalance_timeout_s=4.0,
                                 broker_heartbeat_interval_s=0.5)
    create_topics(settings)
    return settings


def test_reads_recommendations_and_tombstones(settings: Settings) -> None:
    topic = settings.topic_recommendations
    messages: list[tuple[str, bytes | None, bytes | None]] = []
    for user in range(12):
        messages.append((topic, f"user-{user}".encode(),
                         recommendation(f"user-{user}", [f"sku-{user}", "sku-x"])))
    messages.append((topic, b"user-3", recommendation("user-3", ["sku-new", "sku-y"])))
    messages.append((topic, b"user-5", None))  # erased
    messages.append((topic, b"user-7", b"\xffnot json"))  # not streamrec's: skipped
    messages.append((topic, None, b"{}"))  # no key: skipped
    produce(settings, messages)

    with RecommendationConsumer(settings, group_id=f"{settings.app_id}-cache") as consumer:
        got: list[RecommendationMessage] = []
        wait_for(lambda: got.extend(consumer.poll(timeout_s=0.5)) or len(got) >= 14, 30,
                 "14 decoded messages")
        assert consumer.skipped == 2

    latest: dict[str, RecommendationMessage] = {}
    for message in got:
        latest[message.user_id] = message
    assert len(got) == 14
    assert latest["user-3"].item_ids == ["sku-new", "sku-y"]  # the newer one, per user order
    assert latest["user-5"].erased and latest["user-5"].item_ids == []
    assert latest["user-1"].item_ids == ["sku-1", "sku-x"] and not latest["user-1"].erased
    document = latest["user-1"].recommendation
    assert document is not None and document["model"] == {"name": "sasrec",
                                                           "version": "2026-11-20"}


def test_a_group_resumes_where_it_left_off(settings: Settings) -> None:
    topic, group = settings.topic_recommendations, f"{settings.app_id}-resume"

    def read_until(consumer: RecommendationConsumer, user: str) -> list[str]:
        seen: list[str] = []
        wait_for(lambda: seen.extend(m.user_id for m in consumer.poll(timeout_s=0.5))
                 or user in seen, 30, f"{user}'s recommendation")
        # and whatever else arrives right behind it
        seen.extend(m.user_id for m in consumer.messages(idle_timeout_s=1.0))
        return seen

    produce(settings, [(topic, b"u-a", recommendation("u-a", ["sku-1"]))])
    with RecommendationConsumer(settings, group_id=group) as consumer:
        assert read_until(consumer, "u-a") == ["u-a"]
    produce(settings, [(topic, b"u-b", recommendation("u-b", ["sku-2"]))])
    with RecommendationConsumer(settings, group_id=group) as consumer:
        assert read_until(consumer, "u-b") == ["u-b"]  # offsets were committed on close
