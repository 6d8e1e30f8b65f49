"""The topic layout ``streamrec topics create`` creates (creation itself runs against a
broker in the integration tests)."""

from __future__ import annotations

from streams.kafka.topics import topic_specs
from streams.settings import Settings


def test_every_input_topic_is_created_searches_included() -> None:
    settings = Settings(topic_partitions=3, topic_searches="shop.searches")
    specs = {spec.name: spec for spec in topic_specs(settings)}
    assert set(settings.input_topics) <= set(specs)
    searches = specs["shop.searches"]
    assert (searches.partitions, searches.replication_factor, searches.config) == (3, 1, {})
    assert len(specs) == len(topic_specs(settings))  # no name twice
