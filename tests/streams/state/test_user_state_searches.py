"""Searches in a user's state (kept apart from the item sequence) and purchase times."""

from __future__ import annotations

from schemas.events import Event, EventType
from streams.state.bounds import StateBounds
from streams.state.user_state import (
    EventRef,
    Interaction,
    Outcome,
    Purchase,
    Search,
    UserState,
    apply_event,
    apply_events,
    is_expired,
)

MIN = 60_000
T0 = 1_795_456_800_000
BOUNDS = StateBounds(reorder_window_s=300, session_gap_s=1800, max_searches=3)


def search(n: int, t: int, query: str, session: str | None = None) -> Event:
    return Event(f"s{n}", EventType.SEARCH, "u1", None, t, session,
                 properties={"query": query})


def ev(n: int, t: int, item: str, kind: str = "view", session: str | None = None) -> Event:
    return Event(f"e{n}", EventType(kind), "u1", item, t, session)


def fold(*events: Event, bounds: StateBounds = BOUNDS) -> UserState:
    state = apply_events(None, events, bounds).state
    assert state is not None
    return state


# --- searches -----------------------------------------------------------------------------


def test_a_first_search_makes_a_state_without_items() -> None:
    state, outcome = apply_event(None, search(1, T0, "red shoes", "s1"), BOUNDS)
    assert outcome is Outcome.APPLIED
    assert state.recent == () and state.purchases == ()
    assert state.searches == (Search("red shoes", T0),)
    assert state.counts["search"] == 1 and state.counts.total == state.events_applied == 1
    assert state.newest_event == EventRef("s1", "search", T0)
    assert (state.session_id, state.session_started_ms) == ("s1", T0)
    assert UserState.from_bytes(state.to_bytes()) == state


def test_a_search_never_enters_the_item_sequence_but_is_the_newest_event() -> None:
    state = fold(ev(1, T0, "a"), search(2, T0 + MIN, "boots"))
    assert state.recent == (Interaction("a", "view", T0),)
    assert state.searches == (Search("boots", T0 + MIN),)
    assert state.newest_event == EventRef("s2", "search", T0 + MIN)
    assert dict(state.counts) == {"view": 1, "click": 0, "add_to_cart": 0, "purchase": 0,
                                  "search": 1}


def test_searches_are_bounded_newest_last_and_exact_repeats_kept_once() -> None:
    state = fold(search(1, T0, "a"), search(2, T0 + 1, "b"), search(3, T0 + 2, "a"),
                 search(4, T0 + 3, "c"), search(5, T0 + 4, "A"))
    assert state.searches == (Search("a", T0 + 2), Search("c", T0 + 3), Search("A", T0 + 4))
    assert state.counts["search"] == 5  # every search counts, kept or not
    assert fold(search(1, T0, "a"), bounds=StateBounds(max_searches=0)).searches == ()


def test_searches_are_kept_in_event_time_order() -> None:
    state = fold(search(1, T0 + 2 * MIN, "later"), search(2, T0, "earlier"),
                 search(3, T0 + MIN, "between"))
    assert [s.query for s in state.searches] == ["earlier", "between", "later"]
    # a repeat from before the kept time changes nothing
    again = apply_event(state, search(4, T0 + MIN // 2, "later"), BOUNDS).state
    assert again.searches == state.searches


def test_a_late_search_is_counted_but_not_kept() -> None:
    state = fold(ev(1, T0 + 10 * MIN, "a"))
    late, outcome = apply_event(state, search(2, T0, "old"), BOUNDS)
    assert outcome is Outcome.LATE
    assert late.searches == () and late.counts["search"] == 1
    assert late.newest_event == state.newest_event


def test_a_redelivered_search_is_a_duplicate() -> None:
    state = fold(search(1, T0, "a"))
    assert apply_event(state, search(1, T0, "a"), BOUNDS) == (state, Outcome.DUPLICATE)


def test_searches_take_part_in_sessions() -> None:
    state = fold(ev(1, T0, "a"), search(2, T0 + 31 * MIN, "boots"))  # after the gap
    assert state.session_started_ms == T0 + 31 * MIN
    assert state.current_session() == ()
    assert state.current_searches() == (Search("boots", T0 + 31 * MIN),)
    state = apply_event(state, search(3, T0 + 32 * MIN, "hats", session="s9"), BOUNDS).state
    assert (state.session_id, state.session_started_ms) == ("s9", T0 + 32 * MIN)
    assert state.current_searches() == (Search("hats", T0 + 32 * MIN),)


def test_a_search_keeps_the_user_alive() -> None:
    bounds = StateBounds(user_ttl_s=3600)
    state = fold(ev(1, T0, "a"), search(2, T0 + 50 * MIN, "q"), bounds=bounds)
    assert not is_expired(state, T0 + 60 * MIN + 1, bounds)
    assert is_expired(state, T0 + 110 * MIN + 1, bounds)


def test_a_search_event_without_a_query_is_counted_only() -> None:
    # Decoded searches always have one; a hand-made Event may not.
    state = fold(ev(1, T0, "a"), Event("s1", EventType.SEARCH, "u1", None, T0 + 1))
    assert state.searches == () and state.counts["search"] == 1
    assert state.newest_event.event_type == "search"


# --- purchase times -----------------------------------------------------------------------


def test_purchases_keep_the_time_of_the_latest_purchase() -> None:
    state = fold(ev(1, T0, "a", "purchase"), ev(2, T0 + MIN, "b", "purchase"),
                 ev(3, T0 + 2 * MIN, "a", "purchase"))
    assert state.purchases == (Purchase("b", T0 + MIN), Purchase("a", T0 + 2 * MIN))
    assert state.purchased == ("b", "a")
    assert state.purchased_since(T0 + 2 * MIN) == ("a",)
    assert state.purchased_since(T0) == ("b", "a")


def test_a_late_purchase_is_kept_at_its_own_time() -> None:
    state = fold(ev(1, T0 + 60 * MIN, "a", "purchase"))
    late = apply_event(state, ev(2, T0, "old", "purchase"), BOUNDS)
    assert late.outcome is Outcome.LATE
    assert late.state.purchases == (Purchase("old", T0), Purchase("a", T0 + 60 * MIN))
    # an older purchase of an item bought later leaves its time alone
    again = apply_event(late.state, ev(3, T0 + MIN, "a", "purchase"), BOUNDS).state
    assert again.purchases == late.state.purchases


def test_the_purchase_bound_drops_the_oldest_purchase() -> None:
    bounds = StateBounds(max_purchased=2)
    state = fold(ev(1, T0 + 60 * MIN, "a", "purchase"), ev(2, T0 + 61 * MIN, "b", "purchase"),
                 ev(3, T0, "old", "purchase"), bounds=bounds)  # late, and the oldest
    assert state.purchased == ("a", "b")

