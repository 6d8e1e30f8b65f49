"""apply_event on hand-written cases: sessions, duplicates, late events, bounds, TTL, bytes."""

from __future__ import annotations

import orjson
import pytest

from schemas.events import Event, EventType
from streams.state.bounds import StateBounds, StateDecodeError
from streams.state.user_state import (
    EventCounts,
    EventRef,
    Interaction,
    Outcome,
    UserState,
    apply_event,
    apply_events,
    is_expired,
)

MIN = 60_000
T0 = 1_795_456_800_000
BOUNDS = StateBounds(reorder_window_s=300, session_gap_s=1800)


def ev(n: int, t: int, item: str = "", kind: str = "view", session: str | None = None,
       user: str = "u1") -> Event:
    return Event(f"e{n}", EventType(kind), user, item or f"i{n}", t, session)


def fold(*events: Event, bounds: StateBounds = BOUNDS) -> UserState:
    state = apply_events(None, events, bounds).state
    assert state is not None
    return state


def items(state: UserState) -> list[str]:
    return [entry.item_id for entry in state.recent]


def test_first_event_creates_state() -> None:
    state, outcome = apply_event(None, ev(1, T0, kind="click", session="s1"), BOUNDS)
    assert outcome is Outcome.APPLIED
    assert state == UserState(
        recent=(Interaction("i1", "click", T0),),
        searches=(),
        counts=EventCounts(click=1),
        purchases=(),
        session_id="s1",
        session_started_ms=T0,
        newest_event=EventRef("e1", "click", T0),
        recent_event_ids=("e1",),
        events_applied=1,
    )
    assert state.last_event_ms == T0


def test_event_types_are_stored_as_plain_strings() -> None:
    state = fold(Event("e1", EventType.ADD_TO_CART, "u1", "i1", T0))
    assert type(state.recent[0].event_type) is str
    assert type(state.newest_event.event_type) is str


def test_counts_cover_all_types() -> None:
    state = fold(ev(1, T0), ev(2, T0 + 1, kind="click"), ev(3, T0 + 2, kind="click"),
                 ev(4, T0 + 3, kind="purchase"))
    assert dict(state.counts) == {"view": 1, "click": 2, "add_to_cart": 0, "purchase": 1,
                                  "search": 0}
    assert state.counts.total == state.events_applied == 4


def test_duplicate_leaves_state_untouched() -> None:
    state = fold(ev(1, T0), ev(2, T0 + MIN))
    again, outcome = apply_event(state, ev(1, T0), BOUNDS)
    assert outcome is Outcome.DUPLICATE
    assert again is state


def test_duplicate_detection_is_by_event_id_only() -> None:
    state = fold(ev(1, T0))
    other_content = Event("e1", EventType.PURCHASE, "u1", "elsewhere", T0 + 5 * MIN)
    assert apply_event(state, other_content, BOUNDS).outcome is Outcome.DUPLICATE


def test_dedup_window_forgets_old_ids() -> None:
    bounds = StateBounds(dedup_window=3)
    state = fold(*(ev(n, T0 + n) for n in range(1, 5)), bounds=bounds)
    assert state.recent_event_ids == ("e2", "e3", "e4")
    assert apply_event(state, ev(2, T0 + 2), bounds).outcome is Outcome.DUPLICATE
    assert apply_event(state, ev(1, T0 + 1), bounds).outcome is Outcome.APPLIED


def test_out_of_order_within_window_is_put_in_order() -> None:
    state = fold(ev(1, T0), ev(3, T0 + 3 * MIN), ev(2, T0 + MIN))
    assert items(state) == ["i1", "i2", "i3"]
    assert state.newest_event.event_id == "e3"


def test_equal_times_are_ordered_by_item_then_type() -> None:
    a = fold(ev(1, T0, "b"), ev(2, T0, "a", "click"), ev(3, T0, "a", "view"))
    b = fold(ev(3, T0, "a", "view"), ev(1, T0, "b"), ev(2, T0, "a", "click"))
    assert a.recent == b.recent
    assert [(e.item_id, e.event_type) for e in a.recent] == [("a", "click"), ("a", "view"),
                                                             ("b", "view")]
    assert a.newest_event == b.newest_event == EventRef("e3", "view", T0)


def test_late_event_counts_but_does_not_enter_the_sequence() -> None:
    state = fold(ev(1, T0), ev(2, T0 + 10 * MIN))
    late, outcome = apply_event(state, ev(3, T0 + 4 * MIN, kind="purchase"), BOUNDS)
    assert outcome is Outcome.LATE
    assert late.recent == state.recent
    assert late.newest_event == state.newest_event
    assert late.session_id == state.session_id
    assert late.counts["purchase"] == 1
    assert late.purchased == ("i3",)
    assert late.events_applied == 3
    assert apply_event(late, ev(3, T0 + 4 * MIN), BOUNDS).outcome is Outcome.DUPLICATE


def test_reorder_window_boundary() -> None:
    state = fold(ev(1, T0 + 10 * MIN))
    assert apply_event(state, ev(2, T0 + 5 * MIN), BOUNDS).outcome is Outcome.APPLIED
    assert apply_event(state, ev(2, T0 + 5 * MIN - 1), BOUNDS).outcome is Outcome.LATE


def test_zero_reorder_window_makes_every_older_event_late() -> None:
    bounds = StateBounds(reorder_window_s=0)
    state = fold(ev(1, T0 + 1), bounds=bounds)
    assert apply_event(state, ev(2, T0), bounds).outcome is Outcome.LATE
    assert apply_event(state, ev(2, T0 + 1), bounds).outcome is Outcome.APPLIED


def test_sequence_is_bounded_keeping_the_newest() -> None:
    bounds = StateBounds(max_sequence_len=3)
    state = fold(*(ev(n, T0 + n * MIN) for n in range(10)), bounds=bounds)
    assert items(state) == ["i7", "i8", "i9"]
    older = apply_event(state, ev(99, T0 + 6 * MIN + 1), bounds).state
    assert items(older) == ["i7", "i8", "i9"]  # older than everything kept: in, then out
    assert older.counts["view"] == 11


def test_purchased_is_a_bounded_ordered_set() -> None:
    bounds = StateBounds(max_purchased=2)
    state = fold(ev(1, T0, "a", "purchase"), ev(2, T0 + 1, "b", "purchase"),
                 ev(3, T0 + 2, "a", "purchase"), ev(4, T0 + 3, "c", "purchase"), bounds=bounds)
    assert state.purchased == ("a", "c")
    assert fold(ev(1, T0, "a", "purchase"), bounds=StateBounds(max_purchased=0)).purchased == ()


def test_views_do_not_mark_purchased() -> None:
    assert fold(ev(1, T0, "a", "add_to_cart")).purchased == ()


def test_new_session_id_starts_a_session() -> None:
    state = fold(ev(1, T0, session="s1"), ev(2, T0 + MIN, session="s1"),
                 ev(3, T0 + 2 * MIN, session="s2"))
    assert (state.session_id, state.session_started_ms) == ("s2", T0 + 2 * MIN)
    assert [e.item_id for e in state.current_session()] == ["i3"]


def test_event_without_session_id_stays_in_the_current_session() -> None:
    state = fold(ev(1, T0, session="s1"), ev(2, T0 + MIN))
    assert (state.session_id, state.session_started_ms) == ("s1", T0)


def test_gap_starts_a_derived_session() -> None:
    state = fold(ev(1, T0), ev(2, T0 + 30 * MIN))
    assert (state.session_id, state.session_started_ms) == (f"u1:{T0}", T0)
    state = apply_event(state, ev(3, T0 + 60 * MIN + 1), BOUNDS).state
    assert (state.session_id, state.session_started_ms) == (f"u1:{T0 + 60 * MIN + 1}",
                                                            T0 + 60 * MIN + 1)


def test_gap_restarts_even_the_same_session_id() -> None:
    state = fold(ev(1, T0, session="s1"), ev(2, T0 + 31 * MIN, session="s1"))
    assert (state.session_id, state.session_started_ms) == ("s1", T0 + 31 * MIN)


def test_out_of_order_event_never_switches_session() -> None:
    state = fold(ev(1, T0, session="s1"), ev(2, T0 + 2 * MIN, session="s2"),
                 ev(3, T0 + MIN, session="s1"))
    assert (state.session_id, state.session_started_ms) == ("s2", T0 + 2 * MIN)


def test_out_of_order_event_of_the_session_moves_its_start_back() -> None:
    state = fold(ev(2, T0 + 2 * MIN, session="s1"), ev(1, T0, session="s1"))
    assert (state.session_id, state.session_started_ms) == ("s1", T0)
    derived = fold(ev(2, T0 + 2 * MIN), ev(1, T0))
    assert derived.session_started_ms == T0
    assert derived.session_id == f"u1:{T0 + 2 * MIN}"  # ids stay stable once given


def test_is_expired() -> None:
    bounds = StateBounds(user_ttl_s=3600)
    state = fold(ev(1, T0), bounds=bounds)
    assert not is_expired(state, T0 + 3_600_000, bounds)
    assert is_expired(state, T0 + 3_600_001, bounds)
    assert not is_expired(state, T0 - 1, bounds)


def test_apply_events_counts_outcomes() -> None:
    folded = apply_events(None, [ev(1, T0 + 10 * MIN), ev(1, T0), ev(2, T0)], BOUNDS)
    assert folded.outcomes == {Outcome.APPLIED: 1, Outcome.DUPLICATE: 1, Outcome.LATE: 1}
    assert apply_events(None, [], BOUNDS) == (None, {})


def test_inputs_are_not_mutated() -> None:
    state = fold(ev(1, T0), ev(2, T0 + 1))
    snapshot = state.to_bytes()
    apply_event(state, ev(3, T0 - 1), BOUNDS)
    apply_event(state, ev(4, T0 + 2, kind="purchase"), BOUNDS)
    assert state.to_bytes() == snapshot


def test_tighter_bounds_apply_to_stored_state_on_the_next_event() -> None:
    state = fold(*(ev(n, T0 + n) for n in range(20)))
    tight = StateBounds(max_sequence_len=2, dedup_window=2)
    state = apply_event(state, ev(99, T0 + 100), tight).state
    assert len(state.recent) == 2 and len(state.recent_event_ids) == 2


def test_bytes_round_trip_and_are_compact() -> None:
    state = fold(ev(1, T0, "a", "purchase", "s"), ev(2, T0 + 1, "b", "add_to_cart"))
    raw = state.to_bytes()
    assert UserState.from_bytes(raw) == state
    assert orjson.loads(raw)["v"] == 2
    assert b"add_to_cart" not in raw  # event types are stored as small codes


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b'{"v": 2}',
        b'{"v": 3}',
        b'{"v": 0}',
        b'{"v": true}',
        b'{"v": 1}',
        b'{"v":1,"r":[["a",7,1]],"c":[1,0,0,0],"p":[],"s":"s","ss":1,"n":["e",0,1],"d":[],"a":1}',
        b'{"v":1,"r":[["a",0,"1"]],"c":[1,0,0,0],"p":[],"s":"s","ss":1,"n":["e",0,1],"d":[],"a":1}',
        b'{"v":1,"r":[],"c":[1,0,0],"p":[],"s":"s","ss":1,"n":["e",0,1],"d":[],"a":1}',
        b'{"v":1,"r":[],"c":[1,0,0,0,0],"p":[],"s":"s","ss":1,"n":["e",0,1],"d":[],"a":1}',
        b'{"v":1,"r":[],"c":[1,0,0,0],"p":[["a",1]],"s":"s","ss":1,"n":["e",0,1],"d":[],"a":1}',
        b'{"v":2,"r":[],"q":[],"c":[1,0,0,0],"p":[],"s":"s","ss":1,"n":["e",0,1],"d":[],"a":1}',
        b'{"v":2,"r":[],"q":[],"c":[1,0,0,0,0],"p":["a"],"s":"s","ss":1,"n":["e",0,1],"d":[],'
        b'"a":1}',
        b'{"v":2,"r":[],"q":[["q","1"]],"c":[1,0,0,0,0],"p":[],"s":"s","ss":1,"n":["e",0,1],'
        b'"d":[],"a":1}',
        b'{"v":2,"r":[],"q":[[1,1]],"c":[1,0,0,0,0],"p":[],"s":"s","ss":1,"n":["e",0,1],'
        b'"d":[],"a":1}',
        b'{"v":2,"r":[],"c":[1,0,0,0,0],"p":[],"s":"s","ss":1,"n":["e",0,1],"d":[],"a":1}',
        b'{"v":2,"r":[],"q":[],"c":[1,0,0,0,0],"p":[],"s":"s","ss":1,"n":["e",5,1],"d":[],'
        b'"a":1}',
    ],
)
def test_corrupt_bytes_raise_state_decode_error(raw: bytes) -> None:
    with pytest.raises(StateDecodeError):
        UserState.from_bytes(raw)


def test_unknown_event_type_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        apply_event(None, Event("e1", "like", "u1", "i1", T0), BOUNDS)  # type: ignore[arg-type]


def test_event_counts_mapping() -> None:
    counts = EventCounts(view=2, purchase=1, search=3)
    assert counts == {"view": 2, "click": 0, "add_to_cart": 0, "purchase": 1, "search": 3}
    assert counts != EventCounts(view=2)
    assert len(counts) == 5
    assert list(counts) == ["view", "click", "add_to_cart", "purchase", "search"]
    assert hash(counts) == hash(EventCounts(view=2, purchase=1, search=3))
    assert repr(counts) == "EventCounts(view=2, click=0, add_to_cart=0, purchase=1, search=3)"
    assert counts.total == 6 and counts.incremented("search")["search"] == 4


def test_docstring_examples_run() -> None:
    import doctest

    import streams.state.user_state

    assert doctest.testmod(streams.state.user_state).failed == 0
