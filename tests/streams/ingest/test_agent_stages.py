"""The ingest agent times each input event's wait, and no catalogue or rule record's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from streams.ingest.agent import IngestAgent, IngestConfig
from streams.kafka.take import take_events
from streams.ops.metrics import create_metrics
from streams.settings import Settings


@dataclass
class RecordingTopic:
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


@dataclass
class OneBatch:
    """What the agent iterates: ``take_events`` yielding one micro-batch."""

    events: list[Any]

    async def take_events(self, max_: int, within: float) -> AsyncIterator[list[Any]]:
        yield self.events


def message(topic: str, offset: int, age_s: float, value: dict[str, Any]) -> Any:
    stamp = time.time() - age_s
    return SimpleNamespace(message=SimpleNamespace(
        topic=topic, partition=0, offset=offset, timestamp=stamp, key=None,
        value=orjson.dumps(value)))


def test_only_input_events_are_timed_as_input_wait() -> None:
    now_ms = int(time.time() * 1000)
    view = {"event_id": "e1", "event_type": "view", "user_id": "u1", "item_id": "sku-1",
            "timestamp": now_ms}
    item = {"item_id": "sku-1", "title": "A stapler"}
    batch = [message("views", 1, 0.05, view), message("items", 7, 600.0, item)]
    metrics = create_metrics(CollectorRegistry())
    agent = IngestAgent(IngestConfig.from_settings(Settings()), metrics, RecordingTopic(),
                        RecordingTopic(), take=take_events)
    asyncio.run(agent(OneBatch(batch)))  # type: ignore[arg-type]
    registry = metrics.registry
    waits = registry.get_sample_value("streamrec_stage_seconds_count", {"stage": "input_wait"})
    assert waits == 1  # the view; the catalogue record published long ago is not an event
    assert registry.get_sample_value("streamrec_stage_seconds_sum",
                                     {"stage": "input_wait"}) < 60
    assert registry.get_sample_value("streamrec_stage_seconds_count", {"stage": "ingest"}) == 1
