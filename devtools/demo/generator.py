"""A seeded synthetic e-commerce event stream with structure a model can learn.

Users have latent tastes over categories; items belong to categories and have power-law
popularity; sessions move through view → click → add-to-cart → purchase, and within a session
a user tends to browse related items (neighbours in the catalogue of the same category), so
next-item prediction is learnable but not trivial.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GeneratorConfig:
    users: int = 2000  # distinct users
    items: int = 1000  # catalogue size
    categories: int = 20  # items are split evenly over categories
    sessions_per_user: float = 3.0  # mean sessions per user (Poisson, at least 1)
    mean_session_views: float = 6.0  # mean views per session (geometric)
    p_click: float = 0.5  # a view is followed by a click
    p_cart: float = 0.25  # a click is followed by an add-to-cart
    p_purchase: float = 0.4  # an add-to-cart is followed by a purchase
    popularity_exponent: float = 1.1  # Zipf exponent of item popularity within a category
    taste_concentration: float = 0.3  # Dirichlet concentration of user category tastes
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    span_days: float = 7.0  # sessions start uniformly over this span
    seed: int = 7


def item_id(index: int) -> str:
    return f"item-{index:05d}"


def user_id(index: int) -> str:
    return f"user-{index:05d}"


def category_of(config: GeneratorConfig, item_index: int) -> str:
    return f"cat-{item_index % config.categories:02d}"


def generate_events(config: GeneratorConfig) -> list[dict[str, Any]]:
    """All events, sorted by time, as dicts in the event schema (timestamps in epoch ms)."""
    events = list(_events(config))
    events.sort(key=lambda e: (e["timestamp"], e["event_id"]))
    return events


def _events(config: GeneratorConfig) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(config.seed)
    by_category = [
        np.arange(c, config.items, config.categories) for c in range(config.categories)
    ]
    weights = []
    for members in by_category:
        ranks = rng.permutation(len(members)) + 1
        w = 1.0 / ranks ** config.popularity_exponent
        weights.append(w / w.sum())
    span_ms = int(config.span_days * 86_400_000)
    counter = 0
    for u in range(config.users):
        taste = rng.dirichlet(np.full(config.categories, config.taste_concentration))
        for s in range(max(1, rng.poisson(config.sessions_per_user))):
            t = config.start_ms + int(rng.integers(0, span_ms))
            session = f"{user_id(u)}-s{s}"
            category = int(rng.choice(config.categories, p=taste))
            position = int(rng.choice(len(by_category[category]), p=weights[category]))
            for _ in range(max(1, rng.geometric(1.0 / config.mean_session_views))):
                members = by_category[category]
                item = int(members[position])
                for event_type in _funnel(rng, config):
                    counter += 1
                    t += int(rng.integers(2_000, 60_000))
                    yield _event(config, counter, event_type, u, item, t, session)
                # next item: a neighbour in the same category, sometimes a popular jump,
                # sometimes another category the user likes
                r = rng.random()
                if r < 0.6:
                    position = (position + int(rng.integers(1, 4))) % len(members)
                elif r < 0.85:
                    position = int(rng.choice(len(members), p=weights[category]))
                else:
                    category = int(rng.choice(config.categories, p=taste))
                    position = int(rng.choice(len(by_category[category]),
                                              p=weights[category]))


def _funnel(rng: np.random.Generator, config: GeneratorConfig) -> list[str]:
    steps = ["view"]
    if rng.random() < config.p_click:
        steps.append("click")
        if rng.random() < config.p_cart:
            steps.append("add_to_cart")
            if rng.random() < config.p_purchase:
                steps.append("purchase")
    return steps


def _event(
    config: GeneratorConfig, n: int, event_type: str, u: int, item: int, t: int, session: str
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"evt-{config.seed}-{n:08d}",
        "event_type": event_type,
        "user_id": user_id(u),
        "item_id": item_id(item),
        "timestamp": t,
        "session_id": session,
        "properties": {"category": category_of(config, item)},
    }
    if event_type in ("add_to_cart", "purchase"):
        event["properties"]["price"] = round(5.0 + (item % 97) * 1.5, 2)
        event["properties"]["quantity"] = 1
    if event_type == "purchase":
        event["properties"]["order_id"] = f"order-{n:08d}"
    return event
