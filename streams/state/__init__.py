"""Per-user and per-partition state, and the agent that drives a micro-batch through it.

Pure (no Faust, no I/O; what ``from streams.state import ...`` gives):
:mod:`~streams.state.bounds` the limits every container respects ·
:mod:`~streams.state.user_state` one user's state and ``apply_event`` ·
:mod:`~streams.state.trending` the per-partition trending board ·
:mod:`~streams.state.batch` a micro-batch folded into the users it touches.

On Faust and RocksDB: :mod:`~streams.state.tables` the table names ·
:mod:`~streams.state.store` bulk reads and writes of one table partition, below Faust's
per-key API (it uses Faust's store internals, see its docstring) ·
:mod:`~streams.state.agent` the state agent: state → candidates → scoring → emit per
micro-batch.
"""

from streams.state.bounds import (
    DEFAULT_TRENDING_WEIGHTS,
    EVENT_TYPES,
    ITEM_EVENT_TYPES,
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
    Purchase,
    Search,
    UserState,
    apply_event,
    apply_events,
    is_expired,
)

__all__ = [
    "DEFAULT_TRENDING_WEIGHTS",
    "EVENT_TYPES",
    "ITEM_EVENT_TYPES",
    "Applied",
    "EventCounts",
    "EventRef",
    "Folded",
    "Interaction",
    "InvalidBoundsError",
    "Outcome",
    "Purchase",
    "Search",
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
