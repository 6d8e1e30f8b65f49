"""Per-user and per-partition state: pure update functions, no Faust, no I/O.

:mod:`~streams.state.bounds` the limits every container respects ·
:mod:`~streams.state.user_state` one user's state and ``apply_event`` ·
:mod:`~streams.state.trending` the per-partition trending board ·
:mod:`~streams.state.batch` a micro-batch folded into the users it touches.
"""

from streams.state.bounds import (
    DEFAULT_TRENDING_WEIGHTS,
    EVENT_TYPES,
    InvalidBoundsError,
    StateBounds,
    StateDecodeError,
    StateError,
    TrendingConfig,
)
from streams.state.trending import TrendingBoard, record, record_many, top
from streams.state.user_state import (
    Applied,
    EventCounts,
    EventRef,
    Folded,
    Interaction,
    Outcome,
    UserState,
    apply_event,
    apply_events,
    is_expired,
)

__all__ = [
    "DEFAULT_TRENDING_WEIGHTS",
    "EVENT_TYPES",
    "Applied",
    "EventCounts",
    "EventRef",
    "Folded",
    "Interaction",
    "InvalidBoundsError",
    "Outcome",
    "StateBounds",
    "StateDecodeError",
    "StateError",
    "TrendingBoard",
    "TrendingConfig",
    "UserState",
    "apply_event",
    "apply_events",
    "is_expired",
    "record",
    "record_many",
    "top",
]
