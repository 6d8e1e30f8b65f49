"""One user's state and the pure function that folds an event into it.

``apply_event(state, event, bounds)`` never reads a clock, never does I/O and never mutates
its inputs: the same state and event always give the same result. State is updated
incrementally (never recomputed from history) and every container in it is bounded by
:class:`~streams.state.bounds.StateBounds`.

Every event gets one of three outcomes:

* ``DUPLICATE``: its ``event_id`` is among the user's last ``dedup_window`` event ids; the
  state is returned unchanged (the very same object).
* ``LATE``: older than the user's newest event by more than ``reorder_window_s``. It still
  counts (``counts``, ``purchases``, and the caller's trending board) but does not enter
  ``recent`` or ``searches``, move the newest event or touch the session.
* ``APPLIED``: everything else. An item interaction is inserted into ``recent`` in event-time
  order (ties by item id then event type), so events shuffled within the reorder window give
  the same ``recent`` as the sorted stream.

A search names no item: it never enters ``recent`` (the model's item sequence) nor the
trending board, and is kept in ``searches`` instead (query and event time, one entry per
distinct query text, newest last, at most ``max_searches``). Otherwise it is an event like
any other: it is counted (type ``search``), deduplicated, can be the newest event (the
recommendation's trigger), opens and extends sessions and keeps the user from expiring.

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
>>> search = Event("e3", "search", "u1", None, 3_000, properties={"query": "red shoes"})
>>> state, outcome = apply_event(state, search, bounds)
>>> len(state.recent), state.searches, state.newest_event.event_type
(2, (Search(query='red shoes', event_time_ms=3000),), 'search')
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
from typing import Any, Final, NamedTuple, TypeVar

import orjson

from schemas.events import Event
from streams.state.bounds import EVENT_TYPES, StateBounds, StateDecodeError

STATE_FORMAT_VERSION: Final = 2
"""The ``v`` written by :meth:`UserState.to_bytes`; :meth:`UserState.from_bytes` reads this
one and every older one (:data:`READABLE_FORMAT_VERSIONS`)."""
READABLE_FORMAT_VERSIONS: Final = (1, 2)

_TYPE_CODES: Final[Mapping[str, int]] = {name: code for code, name in enumerate(EVENT_TYPES)}
_PURCHASE: Final = _TYPE_CODES["purchase"]
_V1_EVENT_TYPES: Final = 4  # view, click, add_to_cart, purchase: the types v1 records count


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


class Search(NamedTuple):
    """One entry of ``UserState.searches``."""

    query: str
    event_time_ms: int


class Purchase(NamedTuple):
    """One entry of ``UserState.purchases``: an item and when it was last bought."""

    item_id: str
    time_ms: int
    """Event time of the item's latest purchase (for records written before purchase times
    were kept, format v1: the newest event time of that record, see
    :meth:`UserState.from_bytes`)."""


class EventRef(NamedTuple):
    """The identity of an event: what a recommendation names as its trigger."""

    event_id: str
    event_type: str
    event_time_ms: int


class EventCounts(Mapping[str, int]):
    """Events counted per type (every type always present); immutable.

    >>> counts = EventCounts().incremented("view").incremented("view")
    >>> dict(counts)
    {'view': 2, 'click': 0, 'add_to_cart': 0, 'purchase': 0, 'search': 0}
    """

    __slots__ = ("_values",)

    def __init__(
        self,
        view: int = 0,
        click: int = 0,
        add_to_cart: int = 0,
        purchase: int = 0,
        search: int = 0,
    ):
        self._values: tuple[int, ...] = (view, click, add_to_cart, purchase, search)

    def __getitem__(self, event_type: str) -> int:
        return self._values[_TYPE_CODES[event_type]]

    def __iter__(self) -> Iterator[str]:
        return iter(EVENT_TYPES)

    def __len__(self) -> int:
        return len(EVENT_TYPES)

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

    def as_tuple(self) -> tuple[int, ...]:
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
    """Last item interactions, oldest first, ordered by event time; at most
    ``max_sequence_len``. Never holds a search."""
    searches: tuple[Search, ...]
    """Last searches, one per distinct query text (its latest time), oldest first, ordered by
    event time (ties by query); at most ``max_searches``. Late searches are not kept."""
    counts: EventCounts
    """Events applied per type, late ones included."""
    purchases: tuple[Purchase, ...]
    """Items bought, one entry per item with the time of its latest purchase, ordered by that
    time (ties by item id), most recent last; at most ``max_purchased``. Late ones included."""
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

    @property
    def purchased(self) -> tuple[str, ...]:
        """The ids of ``purchases``, in the same order."""
        return tuple(item for item, _time in self.purchases)

    def purchased_since(self, since_ms: int) -> tuple[str, ...]:
        """Ids of the items whose latest purchase is at or after ``since_ms`` (event time)."""
        return tuple(item for item, time_ms in self.purchases if time_ms >= since_ms)

    def current_session(self) -> tuple[Interaction, ...]:
        """The entries of ``recent`` that belong to the current session."""
        start = self.session_started_ms
        return tuple(entry for entry in self.recent if entry.event_time_ms >= start)

    def current_searches(self) -> tuple[Search, ...]:
        """The entries of ``searches`` that belong to the current session."""
        start = self.session_started_ms
        return tuple(entry for entry in self.searches if entry.event_time_ms >= start)

    def to_bytes(self) -> bytes:
        """Compact versioned JSON, format ``v`` = :data:`STATE_FORMAT_VERSION` (2)::

            {"v": 2,
             "r": [[item_id, type_code, event_time_ms], ...],   # recent
             "q": [[query, event_time_ms], ...],                # searches
             "c": [view, click, add_to_cart, purchase, search], # counts
             "p": [[item_id, purchase_time_ms], ...],           # purchases
             "s": session_id, "ss": session_started_ms,
             "n": [event_id, type_code, event_time_ms],         # newest event
             "d": [event_id, ...],                              # dedup window
             "a": events_applied}

        A type code is the type's index in :data:`~streams.state.bounds.EVENT_TYPES`.
        Format 1 differed only in: no ``"q"``, four counts (no search), and ``"p"`` a list of
        item ids without times.
        """
        codes = _TYPE_CODES
        newest = self.newest_event
        return orjson.dumps(
            {
                "v": STATE_FORMAT_VERSION,
                "r": [[item, codes[kind], time_ms] for item, kind, time_ms in self.recent],
                "q": [[query, time_ms] for query, time_ms in self.searches],
                "c": self.counts.as_tuple(),
                "p": [[item, time_ms] for item, time_ms in self.purchases],
                "s": self.session_id,
                "ss": self.session_started_ms,
                "n": [newest.event_id, codes[newest.event_type], newest.event_time_ms],
                "d": self.recent_event_ids,
                "a": self.events_applied,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> UserState:
        """Inverse of :meth:`to_bytes`; also reads every older format
        (:data:`READABLE_FORMAT_VERSIONS`). A format 1 record kept no purchase times: each of
        its purchases reads as made at the record's newest event time (so a purchase bought
        before the upgrade counts as recent for ``exclude_purchased_days`` after that time,
        never as older than it was), and it has no searches and no search count. Raises
        :class:`~streams.state.bounds.StateDecodeError` for corrupt bytes or a format version
        this code does not know."""
        raw, version = _parse(data)
        try:
            return _state_from_raw(raw, version)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StateDecodeError(f"corrupt user state: {exc!r}") from exc


def newest_event_ms(data: bytes) -> int:
    """``UserState.from_bytes(data).last_event_ms`` without building the state: all the TTL
    sweep needs of a stored user. Raises :class:`~streams.state.bounds.StateDecodeError`
    for bytes that are not a state of a known format or whose newest event has no time; it
    reads no other field, so it may answer for a state that is corrupt elsewhere."""
    raw, _version = _parse(data)
    try:
        time_ms = raw["n"][2]
    except (KeyError, TypeError, IndexError) as exc:
        raise StateDecodeError(f"corrupt user state: {exc!r}") from exc
    if type(time_ms) is not int:
        raise StateDecodeError(f"corrupt user state: newest event time {time_ms!r}")
    return time_ms


def _parse(data: bytes) -> tuple[dict[str, Any], int]:
    """A stored state's JSON object and its format version, which must be readable."""
    try:
        raw = orjson.loads(data)
        version = raw["v"]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise StateDecodeError(f"corrupt user state: {exc!r}") from exc
    if type(version) is not int or version not in READABLE_FORMAT_VERSIONS:
        raise StateDecodeError(
            f"user state format v={version!r}; this streamrec reads "
            f"v={', '.join(map(str, READABLE_FORMAT_VERSIONS))}"
        )
    return raw, version


def _state_from_raw(raw: dict[str, Any], version: int) -> UserState:
    names = EVENT_TYPES
    recent = []
    for item, code, time_ms in raw["r"]:  # one loop, checks inline: this is on the hot path
        if type(item) is not str or type(code) is not int or type(time_ms) is not int:
            raise TypeError(f"bad recent entry {[item, code, time_ms]!r}")
        recent.append(Interaction(item, names[_code(code)], time_ms))
    event_id, code, time_ms = raw["n"]
    newest = EventRef(_str(event_id), names[_code(code)], _int(time_ms))
    counts = [_int(c) for c in raw["c"]]
    event_ids = tuple(raw["d"])
    if not all(type(value) is str for value in event_ids):
        raise TypeError("event ids must be strings")
    if version == 1:
        if len(counts) != _V1_EVENT_TYPES:
            raise ValueError(f"counts must have {_V1_EVENT_TYPES} entries: {counts!r}")
        purchased = raw["p"]
        if not all(type(item) is str for item in purchased):
            raise TypeError("purchased items must be strings")
        # v1 kept no purchase times: the newest event time is the latest they can be.
        purchases = tuple(Purchase(item, newest.event_time_ms) for item in purchased)
        searches: tuple[Search, ...] = ()
    else:
        if len(counts) != len(names):
            raise ValueError(f"counts must have {len(names)} entries: {counts!r}")
        purchases = tuple(Purchase(*_str_int(entry, "purchase")) for entry in raw["p"])
        searches = tuple(Search(*_str_int(entry, "search")) for entry in raw["q"])
    return UserState(
        recent=tuple(recent),
        searches=searches,
        counts=EventCounts(*counts),
        purchases=purchases,
        session_id=_str(raw["s"]),
        session_started_ms=_int(raw["ss"]),
        newest_event=newest,
        recent_event_ids=event_ids,
        events_applied=_int(raw["a"]),
    )


def _str_int(entry: Any, what: str) -> tuple[str, int]:
    text, number = entry
    if type(text) is not str or type(number) is not int:
        raise TypeError(f"bad {what} entry {entry!r}")
    return text, number


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
    ``event.user_id``). Raises ``KeyError`` for an event type outside the known ones
    (decoded events never have one). An event without an item (a search) goes to
    ``searches`` when it has a query, never to ``recent`` or ``purchases``.
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
    purchases = state.purchases
    if code == _PURCHASE and item_id is not None:
        purchases = _keep_latest(purchases, Purchase(item_id, time_ms), bounds.max_purchased)
    newest = state.newest_event
    if time_ms < newest.event_time_ms - bounds.reorder_window_s * 1000:
        late = UserState(
            state.recent, state.searches, counts, purchases, state.session_id,
            state.session_started_ms, newest, event_ids, state.events_applied + 1,
        )
        return Applied(late, Outcome.LATE)

    recent = state.recent
    searches = state.searches
    if item_id is not None:
        recent = _insert_in_time_order(
            recent, Interaction(item_id, event_type, time_ms), bounds.max_sequence_len
        )
    else:
        query = event.query
        if query is not None:
            searches = _keep_latest(searches, Search(query, time_ms), bounds.max_searches)
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
        recent, searches, counts, purchases, session_id, started, newest, event_ids,
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
    return is_expired_at(state.last_event_ms, now_ms, bounds)


def is_expired_at(last_event_ms: int, now_ms: int, bounds: StateBounds) -> bool:
    """:func:`is_expired` of a user whose newest event happened at ``last_event_ms``."""
    return now_ms - last_event_ms > bounds.user_ttl_s * 1000


def _first_state(event: Event, code: int, event_type: str, bounds: StateBounds) -> UserState:
    time_ms = event.timestamp_ms
    item_id = event.item_id
    query = event.query
    counts = [0] * len(EVENT_TYPES)
    counts[code] = 1
    purchases = (
        (Purchase(item_id, time_ms),)
        if code == _PURCHASE and item_id is not None and bounds.max_purchased
        else ()
    )
    return UserState(
        recent=() if item_id is None else (Interaction(item_id, event_type, time_ms),),
        searches=(
            (Search(query, time_ms),)
            if item_id is None and query is not None and bounds.max_searches
            else ()
        ),
        counts=EventCounts(*counts),
        purchases=purchases,
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


_Keyed = TypeVar("_Keyed", Search, Purchase)


def _time_then_key(entry: tuple[str, int]) -> tuple[int, str]:
    return (entry[1], entry[0])


def _keep_latest(entries: tuple[_Keyed, ...], entry: _Keyed, limit: int) -> tuple[_Keyed, ...]:
    """``entries`` (``(key, time)`` pairs ordered by time then key, one per key) with
    ``entry`` recorded: a key keeps its latest time, the oldest beyond ``limit`` are dropped.
    The result depends only on the set of entries recorded, not on their order, as long as
    none was dropped in between."""
    if limit == 0:
        return ()
    key, time_ms = entry
    for index, (known, known_ms) in enumerate(entries):
        if known == key:
            if known_ms >= time_ms:  # already recorded at this time or later
                return entries[-limit:] if len(entries) > limit else entries
            entries = entries[:index] + entries[index + 1 :]
            break
    if not entries or (time_ms, key) >= _time_then_key(entries[-1]):
        out = entries + (entry,)
    else:
        ordered = list(entries)
        bisect.insort_right(ordered, entry, key=_time_then_key)
        out = tuple(ordered)
    return out[-limit:] if len(out) > limit else out
