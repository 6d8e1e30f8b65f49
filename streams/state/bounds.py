"""How big per-user and per-partition state may grow, and the errors state functions raise.

Every container in state is bounded by one of these numbers, so a user's record and a
partition's trending board have a fixed worst-case size whatever the input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from schemas.events import EventType
from streams.errors import StreamrecError


class StateError(StreamrecError):
    """Root of the errors the pure state functions raise."""


class InvalidBoundsError(StateError, ValueError):
    """A state bound, trending setting or weight is impossible (zero, negative, not finite, or
    an unknown event type): fix the ``STREAMREC_*`` setting named in the message."""


class StateDecodeError(StateError, ValueError):
    """Stored state bytes could not be read: they are corrupt or were written by a newer
    streamrec (unknown ``v``). Roll the worker forward to the version that wrote them; a
    corrupt record can be deleted, the user starts from empty state."""


EVENT_TYPES: Final = tuple(str(event_type) for event_type in EventType)
"""The event types of the event contract, in the order compact encodings use (stored
records hold a type's index: a new type may only be appended to the schema's enum)."""

ITEM_EVENT_TYPES: Final = tuple(str(t) for t in EventType if t.names_item)
"""The types that name an item (all but search): what ``recent``, ``purchased`` and the
trending board are made of."""


@dataclass(frozen=True, slots=True)
class StateBounds:
    """Limits of one user's state (see :mod:`streams.state.user_state`)."""

    max_sequence_len: int = 50
    """Interactions kept in ``recent`` (the model's input), newest by event time."""
    max_purchased: int = 200
    """Purchased items kept with the time of their latest purchase (excluded from
    recommendations), most recently bought; 0 keeps none."""
    max_searches: int = 5
    """Search queries kept in ``searches``, newest by event time; 0 keeps none."""
    dedup_window: int = 100
    """Event ids remembered per user to drop redelivered duplicates."""
    session_gap_s: float = 1800.0
    """Inactivity (event time) after which the next event opens a new session."""
    reorder_window_s: float = 300.0
    """An event at most this much older than the user's newest event is still put in order
    into ``recent``; an older one is *late* and only counted (counts, purchased, trending)."""
    user_ttl_s: float = 30 * 86_400.0
    """Users without events for this long (event time vs now) are expired."""

    def __post_init__(self) -> None:
        for name, minimum in (("max_sequence_len", 1), ("max_purchased", 0),
                              ("max_searches", 0), ("dedup_window", 1)):
            value = getattr(self, name)
            if type(value) is not int or value < minimum:
                raise InvalidBoundsError(
                    f"StateBounds.{name} must be an int >= {minimum}: {value!r}"
                )
        for name in ("session_gap_s", "reorder_window_s", "user_ttl_s"):
            value = getattr(self, name)
            minimum_ok = value >= 0 if name == "reorder_window_s" else value > 0
            if not (_is_finite_number(value) and minimum_ok):
                bound = ">= 0" if name == "reorder_window_s" else "> 0"
                raise InvalidBoundsError(
                    f"StateBounds.{name} must be a finite number {bound}: {value!r}"
                )


DEFAULT_TRENDING_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}
)
"""How much one event of each item type adds to an item's trending score. Searches name no
item, so they have no weight and never reach the board (``update_trending`` skips them); a
weight of 0 would not do: the board keeps scores as logarithms."""


@dataclass(frozen=True, slots=True)
class TrendingConfig:
    """Settings of the per-partition trending board (see :mod:`streams.state.trending`)."""

    half_life_s: float = 3600.0
    """Time for a score to halve without new events."""
    capacity: int = 1000
    """Items kept per partition; the lowest-scoring is evicted beyond it."""
    weights: Mapping[str, float] = field(
        default_factory=lambda: DEFAULT_TRENDING_WEIGHTS, hash=False
    )
    """Score added per event, by event type; must name exactly the item types
    (:data:`ITEM_EVENT_TYPES`)."""

    def __post_init__(self) -> None:
        check_half_life(self.half_life_s)
        check_capacity(self.capacity)
        if set(self.weights) != set(ITEM_EVENT_TYPES):
            raise InvalidBoundsError(
                f"TrendingConfig.weights must name exactly {', '.join(ITEM_EVENT_TYPES)}: "
                f"{sorted(self.weights)}"
            )
        for event_type, weight in self.weights.items():
            check_weight(weight, f"TrendingConfig.weights[{event_type!r}]")
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))

    def weight(self, event_type: str) -> float:
        """The score one event of ``event_type`` adds."""
        return self.weights[event_type]


def check_half_life(half_life_s: float) -> None:
    """Raise :class:`InvalidBoundsError` unless ``half_life_s`` is a finite number > 0."""
    if not (_is_finite_number(half_life_s) and half_life_s > 0):
        raise InvalidBoundsError(f"trending half-life must be a finite number > 0: {half_life_s!r}")


def check_capacity(capacity: int) -> None:
    """Raise :class:`InvalidBoundsError` unless ``capacity`` is an int >= 1."""
    if type(capacity) is not int or capacity < 1:
        raise InvalidBoundsError(f"trending capacity must be an int >= 1: {capacity!r}")


def check_weight(weight: float, what: str = "trending weight") -> None:
    """Raise :class:`InvalidBoundsError` unless ``weight`` is a finite number > 0."""
    check_positive_number(weight, what)


def check_positive_number(value: object, what: str) -> None:
    """Raise :class:`InvalidBoundsError`, naming ``what``, unless ``value`` is a finite
    number > 0 (an int or a float, not a bool)."""
    if not (_is_finite_number(value) and value > 0):  # type: ignore[operator]
        raise InvalidBoundsError(f"{what} must be a finite number > 0: {value!r}")


def _is_finite_number(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    )
