"""Topic layout and idempotent creation (``streamrec topics create``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from streams.errors import TopicSetupError
from streams.kafka.clients import librdkafka_config
from streams.settings import Settings

log = logging.getLogger(__name__)

ALREADY_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic streamrec reads or writes (Faust creates its own changelogs)."""
    n, rf = settings.topic_partitions, settings.topic_replication_factor
    compacted = {"cleanup.policy": "compact"}
    return [
        TopicSpec(settings.topic_views, n, rf, {}),
        TopicSpec(settings.topic_clicks, n, rf, {}),
        TopicSpec(settings.topic_purchases, n, rf, {}),
        TopicSpec(settings.topic_searches, n, rf, {}),
        TopicSpec(settings.topic_events_by_user, n, rf, {}),
        TopicSpec(settings.topic_recommendations, n, rf, compacted),
        TopicSpec(settings.topic_dead_letter, n, rf, {}),
        TopicSpec(settings.topic_user_erasure, n, rf, {}),
        TopicSpec(settings.topic_items, n, rf, compacted),
        TopicSpec(settings.topic_rules, n, rf, compacted),
        TopicSpec(settings.topic_control, 1, rf, compacted),
        TopicSpec(settings.topic_feedback, n, rf, {}),
        TopicSpec(settings.topic_shadow, n, rf, compacted),
    ]


def create_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Create missing topics; existing ones are left alone. Returns name -> outcome."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(librdkafka_config(settings))
    specs = topic_specs(settings)
    futures = admin.create_topics(
        [
            NewTopic(s.name, num_partitions=s.partitions,
                     replication_factor=s.replication_factor, config=s.config)
            for s in specs
        ],
        request_timeout=timeout_s,
    )
    outcomes: dict[str, str] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            outcomes[name] = "created"
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == ALREADY_EXISTS:
                outcomes[name] = "exists"
            else:
                raise TopicSetupError(f"creating topic {name!r} failed: {error}") from exc
    _check_partitions(admin, specs, timeout_s)
    return outcomes


def _check_partitions(admin: object, specs: list[TopicSpec], timeout_s: float) -> None:
    metadata = admin.list_topics(timeout=timeout_s)  # type: ignore[attr-defined]
    for spec in specs:
        topic = metadata.topics.get(spec.name)
        if topic is None:
            raise TopicSetupError(f"topic {spec.name!r} is missing after creation")
        if len(topic.partitions) != spec.partitions:
            raise TopicSetupError(
                f"topic {spec.name!r} has {len(topic.partitions)} partitions, settings say "
                f"{spec.partitions}: set STREAMREC_TOPIC_PARTITIONS to match or recreate it"
            )
