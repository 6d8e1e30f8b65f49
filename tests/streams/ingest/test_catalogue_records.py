"""Rule and control records in the ingest agent: checked only, bad ones dead-lettered and
counted once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from schemas.control import Promotion, to_json_dict
from schemas.dead_letters import decode_dead_letter
from schemas.events import DEFAULT_LIMITS
from schemas.reasons import RejectReason
from streams.ingest.agent import IngestAgent, IngestConfig
from streams.ingest.batch import RawMessage, ingest
from streams.ops.metrics import create_metrics
from streams.settings import Settings

NOW = 1_795_456_800_000
GOOD = {"rule_id": "fresh", "kind": "exclude_purchased", "days": 30}


def rule(key: bytes | None, value: bytes | None, offset: int) -> RawMessage:
    return RawMessage("rules", 0, offset, NOW, key, value)


MESSAGES = [
    rule(b"fresh", orjson.dumps(GOOD), 1),
    rule(b"fresh", None, 2),  # a tombstone is a valid removal
    rule(b"other", orjson.dumps(GOOD), 3),
    rule(b"promo", orjson.dumps({"rule_id": "promo", "kind": "boost", "brands": ["A"],
                                 "factor": 99}), 4),
    rule(b"x", b"{not json", 5),
]


@dataclass
class RecordingTopic:
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


def test_rule_records_are_only_checked_and_bad_ones_dead_lettered() -> None:
    batch = ingest(MESSAGES, limits=DEFAULT_LIMITS, partitions=2, now_ms=NOW,
                   items_topic="items", rules_topic="rules")
    reasons = [(d.rejection.reason, d.message.offset) for d in batch.dead_letters]
    assert reasons == [(RejectReason.KEY_MISMATCH, 3), (RejectReason.SCHEMA_VIOLATION, 4),
                       (RejectReason.INVALID_JSON, 5)]
    assert batch.bundles == {}
    assert batch.consumed == {("rules", "rule"): 2, ("rules", "invalid"): 3}


def test_the_agent_dead_letters_them_with_their_source_and_counts_them_as_rules() -> None:
    config = IngestConfig.from_settings(Settings())
    assert config.rules_topic == "rules"
    metrics = create_metrics(CollectorRegistry())
    dead_letters = RecordingTopic()
    agent = IngestAgent(config, metrics, RecordingTopic(), dead_letters)
    batch = ingest(MESSAGES, limits=DEFAULT_LIMITS, partitions=2, now_ms=NOW,
                   items_topic=config.items_topic, rules_topic=config.rules_topic)
    asyncio.run(agent._send(batch))
    letters = [decode_dead_letter(sent["value"]) for sent in dead_letters.sent]
    assert [(d["reason"], d["source"]["topic"], d["source"]["offset"]) for d in letters] == [
        ("key_mismatch", "rules", 3), ("schema_violation", "rules", 4),
        ("invalid_json", "rules", 5)]
    registry = metrics.registry
    assert registry.get_sample_value("streamrec_rules_rejected_total",
                                     {"reason": "schema_violation"}) == 1
    assert registry.get_sample_value("streamrec_events_rejected_total",
                                     {"reason": "schema_violation"}) is None
    assert registry.get_sample_value("streamrec_dead_letters_total",
                                     {"reason": "invalid_json"}) == 1


def control(key: bytes | None, value: bytes | None, offset: int) -> RawMessage:
    return RawMessage("streamrec.control", 0, offset, NOW, key, value)


PROMOTION = to_json_dict(Promotion("m-aaaaaaaaaaaa", (), NOW, "promote"))


def test_control_records_are_checked_and_bad_ones_dead_lettered_and_counted_as_control(
) -> None:
    config = IngestConfig.from_settings(Settings())
    assert config.control_topic == "streamrec.control"
    messages = [
        control(b"promotion", orjson.dumps(PROMOTION), 1),
        control(b"experiment/spring", None, 2),  # a tombstone ends an experiment's record
        control(b"promotion", b"{not json", 3),
        control(b"experiment/x", orjson.dumps(PROMOTION), 4),  # a promotion's wrong key
        control(b"promotion", orjson.dumps({**PROMOTION, "version": 7}), 5),
    ]
    batch = ingest(messages, limits=DEFAULT_LIMITS, partitions=2, now_ms=NOW,
                   control_topic=config.control_topic)
    assert batch.bundles == {}
    assert batch.consumed == {("streamrec.control", "control"): 2,
                              ("streamrec.control", "invalid"): 3}
    metrics = create_metrics(CollectorRegistry())
    dead_letters = RecordingTopic()
    agent = IngestAgent(config, metrics, RecordingTopic(), dead_letters)
    asyncio.run(agent._send(batch))
    letters = [decode_dead_letter(sent["value"]) for sent in dead_letters.sent]
    assert [(d["reason"], d["source"]["offset"]) for d in letters] == [
        ("invalid_json", 3), ("key_mismatch", 4), ("wrong_type", 5)]
    assert "streamrec.control" in agent.catalogue_topics
    registry = metrics.registry
    assert registry.get_sample_value("streamrec_control_rejected_total",
                                     {"reason": "key_mismatch"}) == 1
    assert registry.get_sample_value("streamrec_events_rejected_total",
                                     {"reason": "key_mismatch"}) is None
