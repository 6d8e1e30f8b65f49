"""The soak's synthetic load: many users arriving over time, and a closed-loop producer.

Users arrive one after another (``soak-u<n>``); each comes back ``events_per_user - 1``
times, ``revisit_lag`` new users later, so most events read and rewrite existing state.
A small population of heavy users (``soak-h<n>``) gets ``heavy_share`` of all events and
soon fills every per-user bound (sequence length, dedup window, purchases), which is what
shows per-user state staying bounded however many events a user sends.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson

from devtools.producers import produce
from streams.kafka.clients import librdkafka_config
from streams.settings import Settings

EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")
TYPE_WEIGHTS = (70, 20, 7, 3)
REGULAR_PREFIX = "soak-u"
HEAVY_PREFIX = "soak-h"


@dataclass(frozen=True)
class LoadShape:
    """What the synthetic stream looks like."""

    users: int = 1_000_000
    """Regular users, each introduced once, in order."""
    events_per_user: int = 1
    """Events per regular user: the first when they arrive, the others on later visits.
    On the in-memory development broker every event costs about 3 KB of broker memory
    (input, bundle, changelog, recommendation), so 1 keeps a million users near 3 GB."""
    revisit_lag: int = 5_000
    """New users that arrive between two visits of the same regular user."""
    heavy_users: int = 500
    """Users that keep coming back for the whole run (they hit every state bound)."""
    heavy_share: float = 0.05
    """Fraction of all events that belong to heavy users."""
    items: int = 5_000
    """Catalogue size (skewed popularity)."""
    seed: int = 7

    @property
    def total_events(self) -> int:
        """Events the stream yields (approximately for the heavy part, which is random)."""
        regular = self.users * self.events_per_user
        return int(regular / (1.0 - self.heavy_share)) if self.heavy_share < 1 else regular


@dataclass(frozen=True, slots=True)
class SyntheticEvent:
    event_type: str
    user_id: str
    item_id: str
    users_so_far: int  # regular users introduced up to and including this event


def synthetic_events(shape: LoadShape) -> Iterator[SyntheticEvent]:
    """The stream, deterministic for a given shape (timestamps are added when sending)."""
    rng = random.Random(shape.seed)
    lag, visits = shape.revisit_lag, shape.events_per_user

    def pick() -> tuple[str, str]:
        kind = rng.choices(EVENT_TYPES, TYPE_WEIGHTS)[0]
        return kind, f"item-{int(shape.items * rng.random() ** 2)}"

    introduced = 0
    for step in range(shape.users + (visits - 1) * lag):
        owners = []
        if step < shape.users:
            introduced = step + 1
            owners.append(step)
        owners.extend(step - k * lag for k in range(1, visits) if 0 <= step - k * lag
                      < shape.users)
        for user in owners:
            kind, item = pick()
            yield SyntheticEvent(kind, f"{REGULAR_PREFIX}{user}", item, introduced)
            while shape.heavy_users and rng.random() < shape.heavy_share:
                kind, item = pick()
                heavy = f"{HEAVY_PREFIX}{rng.randrange(shape.heavy_users)}"
                yield SyntheticEvent(kind, heavy, item, introduced)


@dataclass
class ProducerProgress:
    sent: int = 0
    users: int = 0
    done: bool = False
    checkpoints: list[tuple[int, int]] = field(default_factory=lambda: [(0, 0)])
    """(events sent, regular users introduced) after every chunk."""


def produce_closed_loop(
    settings: Settings,
    events: Iterator[SyntheticEvent],
    processed: Callable[[], float],
    progress: ProducerProgress,
    *,
    max_backlog: int = 20_000,
    chunk: int = 2_000,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Send ``events`` keyed by user, never more than ``max_backlog`` ahead of
    ``processed()`` (the worker's processed-event count), so the run measures the worker,
    not a queue growing in the broker. Timestamps are the wall clock at sending."""
    from confluent_kafka import Producer

    producer = Producer(librdkafka_config(
        settings, **{"linger.ms": 20, "batch.num.messages": 5000,
                     "queue.buffering.max.messages": 200_000}))
    seq = 0
    try:
        while not stop():
            batch = 0
            now_ms = time.time_ns() // 1_000_000
            for event in events:
                value = orjson.dumps({
                    "event_id": f"s{seq}", "event_type": event.event_type,
                    "user_id": event.user_id, "item_id": event.item_id,
                    "timestamp": now_ms,
                })
                produce(producer, settings.topic_for(event.event_type),
                        event.user_id.encode(), value)
                seq += 1
                batch += 1
                progress.users = event.users_so_far
                if batch >= chunk:
                    break
            producer.poll(0)
            progress.sent = seq
            progress.checkpoints.append((seq, progress.users))
            if batch < chunk:
                break
            while not stop() and seq - processed() > max_backlog:
                time.sleep(0.1)  # closed loop: wait for the worker to catch up
        producer.flush(60)
    finally:
        progress.done = True
