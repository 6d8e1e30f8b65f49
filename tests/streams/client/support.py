"""What the client tests share: a recommendation message as streamrec writes it."""

from __future__ import annotations

import time

from schemas.events import Event, EventType
from schemas.recommendations import build_recommendation, encode_recommendation


def recommendation(user: str, items: list[str]) -> bytes:
    """A message valid per ``recommendation.schema.json`` (encoded by streamrec's codec)."""
    now = int(time.time() * 1000)
    trigger = Event(f"e-{user}", EventType.VIEW, user, items[0], now - 1000)
    return encode_recommendation(build_recommendation(
        user, [(item, 1.0 / (rank + 1)) for rank, item in enumerate(items)],
        "sasrec", "2026-11-20", trigger, now, None))
