"""The benchmark's event stream: seeded, e-commerce shaped, cheap to generate at 10^5 users.

Traffic is a pool of concurrently open sessions. Each step one open session (picked at
random) emits its next event, so users interleave the way they do on a shop. A session
belongs to a user drawn with power-law activity; its items follow a random walk over a
catalogue with Zipf popularity (mostly "next to" the previous item, sometimes a jump to a
popular one); each event's type is drawn from the configured mix, and carts and purchases
reuse the item just looked at. Timestamps here are only for the training file: the harness
stamps every event with the time it is produced.

>>> stream = generate(WorkloadConfig(events=1000, users=500, items=200, seed=1))
>>> len(stream.events), stream.events[0]["event_id"]
(1000, 'b1-0000000')
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")
DEFAULT_MIX = (0.60, 0.30, 0.07, 0.03)  # view, click, add_to_cart, purchase
TRAINING_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, training file only


@dataclass(frozen=True)
class WorkloadConfig:
    events: int = 100_000  # events of the throughput phase (the pre-filled backlog)
    users: int = 100_000  # size of the user population
    items: int = 10_000  # catalogue size
    mix: tuple[float, float, float, float] = DEFAULT_MIX  # shares of EVENT_TYPES
    item_exponent: float = 1.0  # Zipf exponent of item popularity
    user_exponent: float = 0.6  # Zipf exponent of user activity (0 = uniform)
    mean_session_events: float = 5.0  # events per session (geometric mean)
    open_sessions: int = 500  # sessions interleaved at any moment
    categories: int = 50  # items are spread round-robin over categories
    seed: int = 42

    def __post_init__(self) -> None:
        if len(self.mix) != len(EVENT_TYPES) or any(share < 0 for share in self.mix):
            raise ValueError(f"mix needs {len(EVENT_TYPES)} non-negative shares: {self.mix}")
        if sum(self.mix) <= 0 or self.events < 1 or self.users < 1 or self.items < 2:
            raise ValueError("mix, events, users and items must be positive")


@dataclass
class Workload:
    """The events in stream order (throughput backlog first, then the freshness pool)."""

    config: WorkloadConfig
    events: list[dict[str, Any]]
    freshness_pool: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        types = Counter(event["event_type"] for event in self.events)
        return {
            "events": len(self.events),
            "distinct_users": len({event["user_id"] for event in self.events}),
            "distinct_items": len({event["item_id"] for event in self.events}),
            "mix": {t: round(types[t] / len(self.events), 4) for t in EVENT_TYPES},
            "user_population": self.config.users,
            "catalogue": self.config.items,
            "item_zipf_exponent": self.config.item_exponent,
            "user_zipf_exponent": self.config.user_exponent,
            "seed": self.config.seed,
        }


def item_id(index: int) -> str:
    return f"item-{index:06d}"


def catalog(config: WorkloadConfig) -> list[dict[str, Any]]:
    """One catalogue record per item (titles in English and Chinese by category, like the
    demo's), for runs that measure the worker with its catalogue and text features on."""
    from devtools.demo.catalog import ADJECTIVES, BRANDS, CATEGORIES

    records = []
    for index in range(config.items):
        root, english, chinese = CATEGORIES[(index % config.categories) % len(CATEGORIES)]
        adjective_en, adjective_zh = ADJECTIVES[index % len(ADJECTIVES)]
        title = (f"{adjective_zh}{chinese} {index}型" if index % 3 == 2
                 else f"{adjective_en.capitalize()} {english}, model {index}")
        records.append({"item_id": item_id(index), "title": title,
                        "category": [root, english], "brand": BRANDS[index % len(BRANDS)],
                        "available": True})
    return records


def user_id(index: int) -> str:
    return f"user-{index:06d}"


def generate(config: WorkloadConfig, freshness_pool: int = 0) -> Workload:
    """``config.events`` events, then ``freshness_pool`` more from the same traffic."""
    stream = _stream(config)
    events = list(itertools.islice(stream, config.events))
    pool = list(itertools.islice(stream, freshness_pool))
    return Workload(config=config, events=events, freshness_pool=pool)


def _zipf_cumulative(n: int, exponent: float, rng: random.Random) -> tuple[list[int], list[float]]:
    """A random popularity order of ``range(n)`` and cumulative Zipf weights over it."""
    order = list(range(n))
    rng.shuffle(order)
    weights = (1.0 / (rank ** exponent) for rank in range(1, n + 1))
    return order, list(itertools.accumulate(weights))


def _stream(config: WorkloadConfig) -> Iterator[dict[str, Any]]:
    rng = random.Random(config.seed)
    users, user_cum = _zipf_cumulative(config.users, config.user_exponent, rng)
    items, item_cum = _zipf_cumulative(config.items, config.item_exponent, rng)
    type_cum = list(itertools.accumulate(config.mix))
    p_end = 1.0 / max(1.0, config.mean_session_events)

    def new_session(number: int) -> list[Any]:
        user = rng.choices(users, cum_weights=user_cum)[0]
        item = rng.choices(items, cum_weights=item_cum)[0]
        return [user_id(user), f"s{config.seed}-{number}", item]

    opened = itertools.count()
    sessions = [new_session(next(opened)) for _ in range(config.open_sessions)]
    for n in itertools.count():
        slot = rng.randrange(len(sessions))
        user, session, item = sessions[slot]
        event_type = rng.choices(EVENT_TYPES, cum_weights=type_cum)[0]
        if event_type in ("view", "click") and n:
            # browse on: a neighbour of the current item, or a jump to a popular one
            if rng.random() < 0.6:
                item = (item + rng.randint(1, 3)) % config.items
            else:
                item = rng.choices(items, cum_weights=item_cum)[0]
        yield _event(config, n, event_type, user, item, session)
        if rng.random() < p_end:
            sessions[slot] = new_session(next(opened))
        else:
            sessions[slot][2] = item


def _event(config: WorkloadConfig, n: int, event_type: str, user: str, item: int,
           session: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"category": f"cat-{item % config.categories:03d}"}
    if event_type in ("add_to_cart", "purchase"):
        properties["price"] = round(4.99 + (item % 89) * 1.25, 2)
        properties["quantity"] = 1
    if event_type == "purchase":
        properties["order_id"] = f"order-{config.seed}-{n:07d}"
    return {
        "event_id": f"b{config.seed}-{n:07d}",
        "event_type": event_type,
        "user_id": user,
        "item_id": item_id(item),
        "timestamp": TRAINING_START_MS + n * 250,
        "session_id": session,
        "properties": properties,
    }

