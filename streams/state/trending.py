"""Trending items: a bounded board of exponentially decayed interaction scores.

An item's score at time ``t`` is ``sum(weight_i * 2 ** (-(t - t_i) / half_life))`` over its
events ``i``: every event adds its type's weight, and all scores halve every ``half_life_s``
without new events.

**Scope.** There is one board per partition of the user-keyed stream, so each board sees the
events of a hash-sample of users (about ``1 / partitions`` of them), and holds only the top
``capacity`` items: the lowest-scoring item is evicted when a new one does not fit. It is a
fallback for users the model cannot serve, not an exact global ranking.

**Representation (log-space at a reference time).** For each item the board stores
``log2`` of its score *as of the board's fixed* ``reference_ms`` together with the item's
last event time. An event at ``t`` adds ``log2(w) + (t - reference_ms) / half_life`` in log
space (``log2(2**a + 2**b)``), so an update is O(1) and never touches other items; the score
at ``now`` is ``2 ** (stored - (now - reference_ms) / half_life)``. Because every item shares
the reference, ranking by the stored value ranks by current score at *any* time: eviction and
``top`` need no decay pass. Logs keep the numbers small however far ``now`` moves from the
reference (no overflow after weeks of uptime).

Pure functions: :func:`record` and :func:`record_many` return a new board and leave the old
one untouched. Each call copies the board's map once (O(capacity)), so fold a micro-batch
with one :func:`record_many` call rather than one :func:`record` per event.

>>> board = record(None, "sku-1", 8.0, event_time_ms=0, half_life_s=3600, capacity=100)
>>> top(board, k=5, now_ms=3_600_000)  # one half-life later
[('sku-1', 4.0)]
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import orjson

from streams.state.bounds import (
    StateDecodeError,
    check_capacity,
    check_half_life,
    check_weight,
)

BOARD_FORMAT_VERSION: Final = 1
"""The ``v`` written by :meth:`TrendingBoard.to_bytes`."""

_LN2: Final = math.log(2.0)
_MAX_EXPONENT: Final = 1023.0  # 2.0 ** 1024 overflows a float; scores saturate instead


@dataclass(frozen=True, slots=True)
class TrendingBoard:
    """One partition's trending items. Build with :meth:`empty` / :func:`record`."""

    half_life_s: float = 3600.0
    """The half-life the stored values were computed with."""
    reference_ms: int = 0
    """The time the stored log-scores refer to (the first event recorded)."""
    entries: Mapping[str, tuple[float, int]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    """item_id -> (log2 of the score at ``reference_ms``, the item's last event time in ms)."""

    @classmethod
    def empty(cls, half_life_s: float = 3600.0) -> TrendingBoard:
        """A board with no items."""
        check_half_life(half_life_s)
        return cls(half_life_s=half_life_s)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.entries

    def score(self, item_id: str, now_ms: int) -> float:
        """The item's decayed score at ``now_ms`` (0.0 when it is not on the board)."""
        entry = self.entries.get(item_id)
        if entry is None:
            return 0.0
        return _exp2(entry[0] - (now_ms - self.reference_ms) / (self.half_life_s * 1000))

    def to_bytes(self) -> bytes:
        """Compact versioned JSON; floats round-trip exactly."""
        return orjson.dumps(
            {
                "v": BOARD_FORMAT_VERSION,
                "h": self.half_life_s,
                "r": self.reference_ms,
                "e": dict(self.entries),  # (log, updated) tuples: JSON arrays
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TrendingBoard:
        """Inverse of :meth:`to_bytes`; raises :class:`~streams.state.bounds.StateDecodeError`
        for corrupt bytes or an unknown format version."""
        try:
            raw = orjson.loads(data)
            version = raw["v"]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StateDecodeError(f"corrupt trending board: {exc!r}") from exc
        if type(version) is not int or version != BOARD_FORMAT_VERSION:
            raise StateDecodeError(
                f"trending board format v={version!r}; this streamrec reads "
                f"v={BOARD_FORMAT_VERSION}"
            )
        try:
            return _board_from_v1(raw)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StateDecodeError(f"corrupt trending board: {exc!r}") from exc


def _board_from_v1(raw: dict[str, Any]) -> TrendingBoard:
    half_life_s = raw["h"]
    check_half_life(half_life_s)
    reference_ms = raw["r"]
    if type(reference_ms) is not int:
        raise TypeError(f"reference_ms must be an integer: {reference_ms!r}")
    entries: dict[str, tuple[float, int]] = {}
    for item, (log_score, updated) in raw["e"].items():
        if type(log_score) not in (int, float) or type(updated) is not int:
            raise TypeError(f"bad entry for {item!r}: {[log_score, updated]!r}")
        entries[item] = (float(log_score), updated)
    return TrendingBoard(half_life_s, reference_ms, MappingProxyType(entries))


def record(
    board: TrendingBoard | None,
    item_id: str,
    weight: float,
    event_time_ms: int,
    half_life_s: float,
    capacity: int,
) -> TrendingBoard:
    """A new board with one event of ``weight`` for ``item_id`` at ``event_time_ms``.

    ``None`` is an empty board. Evicts the lowest-scoring item beyond ``capacity`` (which may
    be the new one, if everything else scores higher). Out-of-order events are fine: an event
    decays from its own time.
    """
    return record_many(board, ((item_id, weight, event_time_ms),), half_life_s, capacity)


def record_many(
    board: TrendingBoard | None,
    events: Iterable[tuple[str, float, int]],
    half_life_s: float,
    capacity: int,
) -> TrendingBoard:
    """A new board with every ``(item_id, weight, event_time_ms)`` recorded.

    Scores are those of :func:`record` called event by event; only eviction differs: it
    happens once, at the end, where the lowest-scoring items beyond ``capacity`` go. If
    ``half_life_s`` differs from the board's, scores decayed so far keep their value and decay
    at the new rate from now on.
    """
    check_half_life(half_life_s)
    check_capacity(capacity)
    if board is None:
        board = TrendingBoard.empty(half_life_s)
    entries = dict(board.entries)
    reference_ms = board.reference_ms
    if entries and board.half_life_s != half_life_s:
        _reanchor(entries, reference_ms, board.half_life_s, half_life_s)
    half_life_ms = half_life_s * 1000
    for item_id, weight, event_time_ms in events:
        check_weight(weight)
        if not entries:
            reference_ms = event_time_ms
        log_weight = math.log2(weight) + (event_time_ms - reference_ms) / half_life_ms
        current = entries.get(item_id)
        if current is None:
            entries[item_id] = (log_weight, event_time_ms)
        else:
            entries[item_id] = (
                _log2_add(current[0], log_weight),
                max(current[1], event_time_ms),
            )
    excess = len(entries) - capacity
    if excess > 0:
        for item_id, _entry in heapq.nsmallest(excess, entries.items(), key=_eviction_key):
            del entries[item_id]
    return TrendingBoard(half_life_s, reference_ms, MappingProxyType(entries))


def top(
    board: TrendingBoard | None,
    k: int,
    now_ms: int,
    exclude: Collection[str] = (),
) -> list[tuple[str, float]]:
    """The ``k`` highest-scoring items not in ``exclude``, best first, with their scores at
    ``now_ms`` (ties by item id)."""
    if board is None or k <= 0 or not board.entries:
        return []
    entries = board.entries
    excluded = {item for item in exclude if item in entries}
    best = heapq.nsmallest(k + len(excluded), entries.items(), key=_rank_key)
    decay = (now_ms - board.reference_ms) / (board.half_life_s * 1000)
    return [
        (item_id, _exp2(log_score - decay))
        for item_id, (log_score, _updated) in best
        if item_id not in excluded
    ][:k]


def _reanchor(
    entries: dict[str, tuple[float, int]], reference_ms: int, old_s: float, new_s: float
) -> None:
    """Keep each score's value at the board's latest event time, change its decay rate."""
    latest_ms = max(updated for _log, updated in entries.values())
    elapsed_ms = latest_ms - reference_ms
    shift = elapsed_ms / (new_s * 1000) - elapsed_ms / (old_s * 1000)
    for item_id, (log_score, updated) in entries.items():
        entries[item_id] = (log_score + shift, updated)


def _log2_add(a: float, b: float) -> float:
    """``log2(2**a + 2**b)`` without overflow."""
    high, low = (a, b) if a >= b else (b, a)
    return high + math.log1p(2.0 ** (low - high)) / _LN2


def _exp2(exponent: float) -> float:
    return 2.0 ** min(exponent, _MAX_EXPONENT)


def _eviction_key(entry: tuple[str, tuple[float, int]]) -> tuple[float, int, str]:
    item_id, (log_score, updated) = entry
    return (log_score, updated, item_id)


def _rank_key(entry: tuple[str, tuple[float, int]]) -> tuple[float, str]:
    item_id, (log_score, _updated) = entry
    return (-log_score, item_id)
