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
from typing import Final

from schemas.events import Event
from streams.attribution.ledger import Ledger
from streams.state.bounds import StateBounds, StateDecodeError
from streams.state.trending import TrendingBoard, record_many
from streams.state.user_state import Outcome, UserState, apply_event, newest_event_ms

_LEGACY_HEADER: Final = struct.Struct(">I")  # state length
_HEADER: Final = struct.Struct(">BBII")  # magic, format, state length, ledger length
_MAGIC: Final = 0xFF
RECORD_FORMAT_VERSION: Final = 2
"""The format byte :meth:`UserRecord.to_bytes` writes after the magic byte; format 1 is the
legacy layout without a magic (and without a ledger), which :meth:`UserRecord.from_bytes`
still reads."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    """What the ``users`` table stores per user: state, the last recommendation sent, and
    the attribution ledger (recent recommendations and what was credited to them)."""

    state: UserState
    last_recommendation: bytes | None = None
    ledger: Ledger = field(default_factory=Ledger)

    def to_bytes(self) -> bytes:
        """Format 2::

            0xFF, 0x02, state length (u32 BE), ledger length (u32 BE),
            state bytes, ledger bytes (b"" when empty), last recommendation bytes (the rest)

        Format 1 (written before the ledger, still read) was ``state length (u32 BE), state
        bytes, last recommendation bytes``. Its first byte is the top byte of the state
        length, so a format 1 record starting with 0xFF would hold over 4 GiB of state:
        none can, and the magic byte tells the formats apart. A streamrec from before the
        ledger reads a format 2 record as a (truncated) 4 GiB state and discards it as
        undecodable, the user starting afresh: roll forward, not back.
        """
        state = self.state.to_bytes()
        ledger = self.ledger.to_bytes()
        return b"".join((
            _HEADER.pack(_MAGIC, RECORD_FORMAT_VERSION, len(state), len(ledger)),
            state, ledger, self.last_recommendation or b"",
        ))

    @classmethod
    def from_bytes(cls, payload: bytes) -> UserRecord:
        """Inverse of :meth:`to_bytes`, also reading format 1 (an empty ledger); raises
        :class:`StateDecodeError` for corrupt bytes or a format this code does not know."""
        state, ledger, rest = _record_parts(payload)
        return cls(state=UserState.from_bytes(state), last_recommendation=rest or None,
                   ledger=Ledger.from_bytes(ledger))

    @staticmethod
    def newest_event_ms(payload: bytes) -> int:
        """The time of the stored user's newest event, decoding neither the rest of the
        state nor the ledger (:func:`~streams.state.user_state.newest_event_ms`). Raises
        :class:`StateDecodeError` where :meth:`from_bytes` would for the record's layout
        or its state's format."""
        return newest_event_ms(_record_parts(payload)[0])


def _record_parts(payload: bytes) -> tuple[bytes, bytes, bytes]:
    """A stored record's state, ledger and last-recommendation bytes, in either format;
    :class:`StateDecodeError` when its layout is broken."""
    if payload[:1] == b"\xff":
        try:
            _magic, version, state_length, ledger_length = _HEADER.unpack_from(payload)
        except struct.error as exc:
            raise StateDecodeError(f"user record shorter than its header: {exc}") from exc
        if version != RECORD_FORMAT_VERSION:
            raise StateDecodeError(
                f"user record format {version}; this streamrec reads formats 1 and "
                f"{RECORD_FORMAT_VERSION} (written by a newer streamrec?)"
            )
        start = _HEADER.size
        end = start + state_length + ledger_length
        if len(payload) < end:
            raise StateDecodeError(
                f"user record truncated: header says {state_length} state and "
                f"{ledger_length} ledger bytes, {len(payload) - start} present"
            )
        return (payload[start : start + state_length], payload[start + state_length : end],
                payload[end:])
    try:  # format 1: state length, state, last recommendation
        (length,) = _LEGACY_HEADER.unpack_from(payload)
    except struct.error as exc:
        raise StateDecodeError(f"user record shorter than its header: {exc}") from exc
    start = _LEGACY_HEADER.size
    if len(payload) < start + length:
        raise StateDecodeError(
            f"user record truncated: header says {length} state bytes, "
            f"{len(payload) - start} present"
        )
    return payload[start : start + length], b"", payload[start + length :]


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
    replayed_events: list[Event] = field(default_factory=list)
    """Duplicates (already in their user's state): a crash may have lost the attribution
    records they earned, which their replay announces again."""
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
            if outcome is Outcome.DUPLICATE:
                update.replayed_events.append(event)
            else:
                update.fresh_events.append(event)
        if state is None:  # unreachable: apply_event always returns a state
            continue
        update.users[user_id] = UserRecord(
            state=state,
            last_recommendation=stored.last_recommendation if stored else None,
            ledger=stored.ledger if stored else Ledger(),
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
