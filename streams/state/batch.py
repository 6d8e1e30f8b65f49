"""Apply one micro-batch of events to the users it touches, reading and writing each once.

Pure: the caller passes a function to read a user's stored record and gets back the new
records to write, so the same code runs in the worker, in tests and in the offline replay
that the crash-recovery test compares against.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from schemas.events import Event
from streams.state.bounds import StateBounds, StateDecodeError
from streams.state.trending import TrendingBoard, record_many
from streams.state.user_state import Outcome, UserState, apply_event

_HEADER = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class UserRecord:
    """What the ``users`` table stores per user: state plus the last recommendation sent."""

    state: UserState
    last_recommendation: bytes | None = None

    def to_bytes(self) -> bytes:
        state = self.state.to_bytes()
        return _HEADER.pack(len(state)) + state + (self.last_recommendation or b"")

    @classmethod
    def from_bytes(cls, payload: bytes) -> UserRecord:
        """Inverse of :meth:`to_bytes`; raises :class:`StateDecodeError` for corrupt bytes."""
        try:
            (length,) = _HEADER.unpack_from(payload)
        except struct.error as exc:
            raise StateDecodeError(f"user record shorter than its header: {exc}") from exc
        start = _HEADER.size
        if len(payload) < start + length:
            raise StateDecodeError(
                f"user record truncated: header says {length} state bytes, "
                f"{len(payload) - start} present"
            )
        state = UserState.from_bytes(payload[start : start + length])
        rest = payload[start + length :]
        return cls(state=state, last_recommendation=rest or None)


def read_record(
    raw: bytes | None, discard: Callable[[StateDecodeError], None]
) -> UserRecord | None:
    """The stored record, or ``None`` for a user without one.

    A record that cannot be decoded (corrupt bytes, or written by a format this code does
    not know) is handed to ``discard`` and read as absent: that user starts afresh instead
    of the whole partition stopping on every redelivery of the batch.
    """
    if not raw:
        return None
    try:
        return UserRecord.from_bytes(raw)
    except StateDecodeError as exc:
        discard(exc)
        return None


@dataclass
class BatchUpdate:
    """New per-user records and what happened to each event.

    ``users`` holds every user the batch touched, including users whose events were all
    duplicates: rewriting and re-announcing them is what repairs a crash between a local
    state write and its changelog record or recommendation (at-least-once redelivery).
    """

    users: dict[str, UserRecord] = field(default_factory=dict)
    fresh_events: list[Event] = field(default_factory=list)
    outcomes: Counter[Outcome] = field(default_factory=Counter)


def group_by_user(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Events per user, in arrival order."""
    grouped: dict[str, list[Event]] = {}
    for event in events:
        grouped.setdefault(event.user_id, []).append(event)
    return grouped


def apply_batch(
    events: Iterable[Event],
    load: Callable[[str], UserRecord | None],
    bounds: StateBounds,
) -> BatchUpdate:
    """Fold each user's events of this batch into their record (one read per user)."""
    update = BatchUpdate()
    for user_id, user_events in group_by_user(events).items():
        stored = load(user_id)
        state = stored.state if stored is not None else None
        for event in user_events:
            state, outcome = apply_event(state, event, bounds)
            update.outcomes[outcome] += 1
            if outcome is not Outcome.DUPLICATE:
                update.fresh_events.append(event)
        if state is None:  # unreachable: apply_event always returns a state
            continue
        update.users[user_id] = UserRecord(
            state=state,
            last_recommendation=stored.last_recommendation if stored else None,
        )
    return update


def update_trending(
    board: TrendingBoard,
    events: Iterable[Event],
    weights: Mapping[str, float],
    half_life_s: float,
    capacity: int,
) -> TrendingBoard:
    """Fold this batch's item interactions into the partition's trending board; events
    without an item (searches) are skipped."""
    return record_many(
        board,
        ((event.item_id, weights.get(event.event_type, 1.0), event.timestamp_ms)
         for event in events if event.item_id is not None),
        half_life_s,
        capacity,
    )
