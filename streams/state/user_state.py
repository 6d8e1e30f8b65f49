"""One user's state and the pure function that folds an event into it.

``apply_event(state, event, bounds)`` never reads a clock, never does I/O and never mutates
its inputs: the same state and event always give the same result. State is updated
incrementally (never recomputed from history) and every container in it is bounded by
:class:`~streams.state.bounds.StateBounds`.

Every event gets one of three outcomes:

* ``DUPLICATE``: its ``event_id`` is among the user's last ``dedup_window`` event ids; the
  state is returned unchanged (the very same object).
* ``LATE``: older than the user's newest event by more than ``reorder_window_s``. It still
  counts (``counts``, ``purchased``, and the caller's trending board) but does not enter
  ``recent``, move the newest event or touch the session.
* ``APPLIED``: everything else. It is inserted into ``recent`` in event-time order (ties by
  item id then event type), so events shuffled within the reorder window give the same
  ``recent`` as the sorted stream.

Sessions are decided when an event becomes the user's newest: a new session starts when the
event carries a ``session_id`` other than the current one, or when it comes more than
``session_gap_s`` after the newest event; its id is the event's ``session_id`` or, without
one, ``"<user_id>:<event_time_ms>"``. An out-of-order event never opens or closes a session;
if it belongs to the current session it may move ``session_started_ms`` back to its time.

>>> from schemas.events import Event
>>> bounds = StateBounds()
>>> state, outcome = apply_event(None, Event("e1", "view", "u1", "sku-1", 1_000), bounds)
>>> state, outcome = apply_event(state, Event("e2", "click", "u1", "sku-2", 2_000), bounds)
>>> [item for item, _type, _time in state.recent], dict(state.counts)["click"], outcome
(['sku-1', 'sku-2'], 1, <Outcome.APPLIED: 'applied'>)
>>> apply_event(state, Event("e2", "click", "u1", "sku-2", 2_000), bounds).outcome
<Outcome.DUPLICATE: 'duplicate'>
>>> UserState.from_bytes(state.to_bytes()) == state
True
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, NamedTuple

import orjson

from schemas.events import Event
from streams.state.bounds import EVENT_TYPES, StateBounds, StateDecodeError

STATE_FORMAT_VERSION: Final = 1
"""The ``v`` written by :meth:`UserState.to_bytes`."""

_TYPE_CODES: Final[Mapping[str, int]] = {name: code for code, name in enumerate(EVENT_TYPES)}
_PURCHASE: Final = _TYPE_CODES["purchase"]


class Outcome(StrEnum):
    """What :func:`apply_event` did with an event (also a metric label value)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    LATE = "late"


class Interaction(NamedTuple):
    """One entry of ``UserState.recent``."""

    item_id: str
    event_type: str
    event_time_ms: int


class EventRef(NamedTuple):
    """The identity of an event: what a recommendation names as its trigger."""

    event_id: str
    event_type: str
    event_time_ms: int


class EventCounts(Mapping[str, int]):
    """Events counted per type (all four types always present); immutable.

    >>> counts = EventCounts().incremented("view").incremented("view")
    >>> dict(counts)
    {'view': 2, 'click': 0, 'add_to_cart': 0, 'purchase': 0}
    """

    __slots__ = ("_values",)

    def __init__(self, view: int = 0, click: int = 0, add_to_cart: int = 0, purchase: int = 0):
        self._values: tuple[int, int, int, int] = (view, click, add_to_cart, purchase)

    def __getitem__(self, event_type: str) -> int:
        return self._values[_TYPE_CODES[event_type]]

    def __iter__(self) -> Iterator[str]:
        return iter(EVENT_TYPES)

    def __len__(self) -> int:
        return 4

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventCounts):
            return self._values == other._values
        return Mapping.__eq__(self, other)

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        pairs = zip(EVENT_TYPES, self._values, strict=True)
        return "EventCounts(" + ", ".join(f"{k}={v}" for k, v in pairs) + ")"

    @property
    def total(self) -> int:
        """All events counted."""
        return sum(self._values)

    def as_tuple(self) -> tuple[int, int, int, int]:
        """Counts in :data:`~streams.state.bounds.EVENT_TYPES` order."""
        return self._values

    def incremented(self, event_type: str) -> EventCounts:
        """A copy with one more event of ``event_type``."""
        values = list(self._values)
        values[_TYPE_CODES[event_type]] += 1
        return EventCounts(*values)


@dataclass(frozen=True, slots=True)
class UserState:
    """Everything streamrec remembers about one user (the ``users`` table value)."""

    recent: tuple[Interaction, ...]
    """Last interactions, oldest first, ordered by event time; at most ``max_sequence_len``."""
    counts: EventCounts
    """Events applied per type, late ones included."""
    purchased: tuple[str, ...]
    """Item ids bought, most recent purchase last; at most ``max_purchased``."""
    session_id: str
    """The current session: the producer's session id, or a derived one."""
    session_started_ms: int
    """Event time of the current session's first known event."""
    newest_event: EventRef
    """The newest event by event time (ties: larger event id); the recommendation trigger."""
    recent_event_ids: tuple[str, ...]
    """Ids of the last ``dedup_window`` events applied (arrival order), for deduplication."""
    events_applied: int
    """Events applied or counted late since the state was created (duplicates excluded)."""

    @property
    def last_event_ms(self) -> int:
        """Event time of the newest event (what the TTL and the session gap measure from)."""
        return self.newest_event.event_time_ms

    def current_session(self) -> tuple[Interaction, ...]:
        """The entries of ``recent`` that belong to the current session."""
        start = self.session_started_ms
        return tuple(entry for entry in self.recent if entry.event_time_ms >= start)

    def to_bytes(self) -> bytes:
        """Compact versioned JSON (``v`` = :data:`STATE_FORMAT_VERSION`)."""
        codes = _TYPE_CODES
        newest = self.newest_event
        return orjson.dumps(
            {
                "v": STATE_FORMAT_VERSION,
                "r": [[item, codes[kind], time_ms] for item, kind, time_ms in self.recent],
                "c": self.counts.as_tuple(),
                "p": self.purchased,
                "s": self.session_id,
                "ss": self.session_started_ms,
                "n": [newest.event_id, codes[newest.event_type], newest.event_time_ms],
                "d": self.recent_event_ids,
                "a": self.events_applied,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> UserState:
        """Inverse of :meth:`to_bytes`; raises :class:`~streams.state.bounds.StateDecodeError`
        for corrupt bytes or a format version this code does not know."""
        try:
            raw = orjson.loads(data)
            version = raw["v"]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StateDecodeError(f"corrupt user state: {exc!r}") from exc
        if type(version) is not int or version != STATE_FORMAT_VERSION:
            raise StateDecodeError(
                f"user state format v={version!r}; this streamrec reads v={STATE_FORMAT_VERSION}"
            )
        try:
            return _state_from_v1(raw)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StateDecodeError(f"corrupt user state: {exc!r}") from exc


def _state_from_v1(raw: dict[str, Any]) -> UserState:
    names = EVENT_TYPES
    recent = []
    for item, code, time_ms in raw["r"]:  # one loop, checks inline: this is on the hot path
        if type(item) is not str or type(code) is not int or type(time_ms) is not int:
            raise TypeError(f"bad recent entry {[item, code, time_ms]!r}")
        recent.append(Interaction(item, names[_code(code)], time_ms))
    event_id, code, time_ms = raw["n"]
    counts = raw["c"]
    if len(counts) != 4:
        raise ValueError(f"counts must have 4 entries: {counts!r}")
    purchased = tuple(raw["p"])
    event_ids = tuple(raw["d"])
    if not all(type(value) is str for value in purchased + event_ids):
        raise TypeError("purchased items and event ids must be strings")
    return UserState(
        recent=tuple(recent),
        counts=EventCounts(*(_int(c) for c in counts)),
        purchased=purchased,
        session_id=_str(raw["s"]),
        session_started_ms=_int(raw["ss"]),
        newest_event=EventRef(_str(event_id), names[_code(code)], _int(time_ms)),
        recent_event_ids=event_ids,
        events_applied=_int(raw["a"]),
    )


def _str(value: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _code(code: Any) -> int:
    if type(code) is not int or not 0 <= code < len(EVENT_TYPES):
        raise ValueError(f"unknown event type code {code!r}")
    return code


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    return value


class Applied(NamedTuple):
    """Result of :func:`apply_event`: the new state and what happened."""

    state: UserState
    outcome: Outcome


class Folded(NamedTuple):
    """Result of :func:`apply_events`: the final state and how many events had each outcome."""

    state: UserState | None
    outcomes: Counter[Outcome]


def apply_event(state: UserState | None, event: Event, bounds: StateBounds) -> Applied:
    """Fold one event into a user's state (``None``: the user has no state yet). Pure.

    ``event`` must belong to the user whose state this is (the caller keys state by
    ``event.user_id``). Raises ``KeyError`` for an event type outside the four known ones
    (decoded events never have one).
    """
    code = _TYPE_CODES[event.event_type]
    event_type = EVENT_TYPES[code]  # the plain str, whatever enum or str the event carries
    item_id = event.item_id
    time_ms = event.timestamp_ms
    if state is None:
        return Applied(_first_state(event, code, event_type, bounds), Outcome.APPLIED)
    if event.event_id in state.recent_event_ids:
        return Applied(state, Outcome.DUPLICATE)

    event_ids = _bounded_append(state.recent_event_ids, event.event_id, bounds.dedup_window)
    counts = state.counts.incremented(event_type)
    purchased = state.purchased
    if code == _PURCHASE:
        purchased = _touch(purchased, item_id, bounds.max_purchased)
    newest = state.newest_event
    if time_ms < newest.event_time_ms - bounds.reorder_window_s * 1000:
        late = UserState(
            state.recent, counts, purchased, state.session_id, state.session_started_ms,
            newest, event_ids, state.events_applied + 1,
        )
        return Applied(late, Outcome.LATE)

    recent = _insert_in_time_order(
        state.recent, Interaction(item_id, event_type, time_ms), bounds.max_sequence_len
    )
    session_id = state.session_id
    started = state.session_started_ms
    gap_ms = bounds.session_gap_s * 1000
    if (time_ms, event.event_id) > (newest.event_time_ms, newest.event_id):
        new_id = event.session_id is not None and event.session_id != session_id
        if new_id or time_ms - newest.event_time_ms > gap_ms:
            session_id = event.session_id or _derived_session_id(event.user_id, time_ms)
            started = time_ms
        newest = EventRef(event.event_id, event_type, time_ms)
    elif (
        time_ms < started
        and started - time_ms <= gap_ms
        and (event.session_id is None or event.session_id == session_id)
    ):
        started = time_ms
    applied = UserState(
        recent, counts, purchased, session_id, started, newest, event_ids,
        state.events_applied + 1,
    )
    return Applied(applied, Outcome.APPLIED)


def apply_events(
    state: UserState | None, events: Iterable[Event], bounds: StateBounds
) -> Folded:
    """:func:`apply_event` folded over ``events`` in order."""
    outcomes: Counter[Outcome] = Counter()
    for event in events:
        state, outcome = apply_event(state, event, bounds)
        outcomes[outcome] += 1
    return Folded(state, outcomes)


def is_expired(state: UserState, now_ms: int, bounds: StateBounds) -> bool:
    """True when the user's newest event is more than ``user_ttl_s`` before ``now_ms``."""
    return now_ms - state.last_event_ms > bounds.user_ttl_s * 1000


def _first_state(event: Event, code: int, event_type: str, bounds: StateBounds) -> UserState:
    time_ms = event.timestamp_ms
    counts = [0, 0, 0, 0]
    counts[code] = 1
    purchased = (event.item_id,) if code == _PURCHASE and bounds.max_purchased else ()
    return UserState(
        recent=(Interaction(event.item_id, event_type, time_ms),),
        counts=EventCounts(*counts),
        purchased=purchased,
        session_id=event.session_id or _derived_session_id(event.user_id, time_ms),
        session_started_ms=time_ms,
        newest_event=EventRef(event.event_id, event_type, time_ms),
        recent_event_ids=(event.event_id,),
        events_applied=1,
    )


def _derived_session_id(user_id: str, time_ms: int) -> str:
    return f"{user_id}:{time_ms}"


def _order_key(entry: Interaction) -> tuple[int, str, str]:
    return (entry[2], entry[0], entry[1])


def _insert_in_time_order(
    recent: tuple[Interaction, ...], entry: Interaction, limit: int
) -> tuple[Interaction, ...]:
    if not recent or _order_key(entry) >= _order_key(recent[-1]):
        out = recent + (entry,)
    else:
        entries = list(recent)
        bisect.insort_right(entries, entry, key=_order_key)
        out = tuple(entries)
    return out[-limit:] if len(out) > limit else out


def _bounded_append(values: tuple[str, ...], value: str, limit: int) -> tuple[str, ...]:
    out = values + (value,)
    return out[-limit:] if len(out) > limit else out


def _touch(purchased: tuple[str, ...], item_id: str, limit: int) -> tuple[str, ...]:
    """``item_id`` moved (or added) to the end, oldest dropped beyond ``limit``."""
    if limit == 0:
        return ()
    if purchased and purchased[-1] == item_id:
        return purchased[-limit:] if len(purchased) > limit else purchased
    if item_id in purchased:
        purchased = tuple(p for p in purchased if p != item_id)
    out = purchased + (item_id,)
    return out[-limit:] if len(out) > limit else out
