"""candidates_for: the model's history and the items never to recommend."""

from __future__ import annotations

from schemas.events import Event, EventType
from streams.candidates.session import candidates_for
from streams.state.bounds import StateBounds
from streams.state.user_state import UserState, apply_events

T0 = 1_795_456_800_000
MINUTE_MS = 60_000
BOUNDS = StateBounds(session_gap_s=1800.0, reorder_window_s=300.0)


def event(n: int, kind: EventType, item: str, time_ms: int, session: str | None = None) -> Event:
    return Event(f"e{n}", kind, "u1", item, time_ms, session)


def state_of(*events: Event) -> UserState:
    state = apply_events(None, events, BOUNDS).state
    assert state is not None
    return state


def test_history_is_the_recent_items_oldest_first_by_event_time() -> None:
    state = state_of(
        event(1, EventType.VIEW, "b", T0 + 2 * MINUTE_MS),
        event(2, EventType.VIEW, "a", T0 + MINUTE_MS),  # arrives later, happened earlier
        event(3, EventType.CLICK, "c", T0 + 3 * MINUTE_MS),
        event(4, EventType.VIEW, "a", T0 + 4 * MINUTE_MS),
    )
    cands = candidates_for(state, exclude_recent=False)
    assert cands.history == ["a", "b", "c", "a"]


def test_purchases_are_excluded_whether_or_not_recent_items_are() -> None:
    state = state_of(
        event(1, EventType.VIEW, "a", T0),
        event(2, EventType.PURCHASE, "p", T0 + MINUTE_MS),
        event(3, EventType.VIEW, "b", T0 + 2 * MINUTE_MS),
    )
    assert candidates_for(state, exclude_recent=False).exclude == {"p"}
    assert candidates_for(state, exclude_recent=True).exclude == {"a", "b", "p"}


def test_late_purchases_are_excluded_though_they_are_not_in_the_history() -> None:
    state = state_of(
        event(1, EventType.VIEW, "a", T0),
        event(2, EventType.PURCHASE, "old", T0 - 60 * MINUTE_MS),  # beyond the reorder window
    )
    cands = candidates_for(state, exclude_recent=False)
    assert cands.history == ["a"]
    assert cands.exclude == {"old"}


def test_exclude_recent_covers_only_the_current_session_after_a_gap() -> None:
    state = state_of(
        event(1, EventType.VIEW, "old-session", T0),
        event(2, EventType.VIEW, "new-1", T0 + 31 * MINUTE_MS),  # > 30 min gap: new session
        event(3, EventType.CLICK, "new-2", T0 + 32 * MINUTE_MS),
    )
    cands = candidates_for(state, exclude_recent=True)
    assert cands.history == ["old-session", "new-1", "new-2"]
    assert cands.exclude == {"new-1", "new-2"}


def test_exclude_recent_follows_an_explicit_session_change() -> None:
    state = state_of(
        event(1, EventType.VIEW, "first", T0, session="s1"),
        event(2, EventType.VIEW, "second", T0 + MINUTE_MS, session="s2"),
    )
    assert candidates_for(state, exclude_recent=True).exclude == {"second"}


def test_an_out_of_order_event_of_the_current_session_is_excluded_too() -> None:
    state = state_of(
        event(1, EventType.VIEW, "later", T0 + 2 * MINUTE_MS),
        event(2, EventType.VIEW, "earlier", T0),  # within the reorder window, same session
    )
    assert state.session_started_ms == T0
    assert candidates_for(state, exclude_recent=True).exclude == {"earlier", "later"}



DAY_MS = 86_400_000


def test_exclude_purchased_days_none_excludes_every_kept_purchase() -> None:
    state = state_of(
        event(1, EventType.PURCHASE, "long-ago", T0 - 400 * DAY_MS),  # late: still kept
        event(2, EventType.PURCHASE, "today", T0),
    )
    assert candidates_for(state, exclude_recent=False).exclude == {"long-ago", "today"}
    assert candidates_for(
        state, exclude_recent=False, exclude_purchased_days=None).exclude == {"long-ago", "today"}


def test_exclude_purchased_days_keeps_only_purchases_within_the_window() -> None:
    state = state_of(
        event(1, EventType.PURCHASE, "ten-days", T0 - 10 * DAY_MS),
        event(2, EventType.PURCHASE, "edge", T0 - 7 * DAY_MS),
        event(3, EventType.PURCHASE, "today", T0),
    )
    # default "now": the user's newest event time (event time, like the state)
    assert candidates_for(
        state, exclude_recent=False, exclude_purchased_days=7).exclude == {"edge", "today"}
    assert candidates_for(
        state, exclude_recent=False, exclude_purchased_days=0.5).exclude == {"today"}
    later = T0 + 8 * DAY_MS
    assert candidates_for(state, exclude_recent=False, exclude_purchased_days=7,
                          now_ms=later).exclude == set()


def test_a_repeat_purchase_renews_the_exclusion() -> None:
    state = state_of(
        event(1, EventType.PURCHASE, "coffee", T0 - 30 * DAY_MS),
        event(2, EventType.PURCHASE, "coffee", T0),
    )
    assert candidates_for(
        state, exclude_recent=False, exclude_purchased_days=7).exclude == {"coffee"}


def test_exclude_recent_still_applies_with_a_purchase_window() -> None:
    state = state_of(
        event(1, EventType.PURCHASE, "old", T0 - 30 * DAY_MS),
        event(2, EventType.VIEW, "seen", T0),
    )
    assert candidates_for(
        state, exclude_recent=True, exclude_purchased_days=7).exclude == {"seen"}


def test_the_latest_search_steers_and_never_joins_the_history() -> None:
    def search(n: int, query: str, time_ms: int) -> Event:
        return Event(f"s{n}", EventType.SEARCH, "u1", None, time_ms,
                     properties={"query": query})

    state = state_of(event(1, EventType.VIEW, "a", T0), search(2, "boots", T0 + MINUTE_MS),
                     search(3, "red boots", T0 + 2 * MINUTE_MS))
    cands = candidates_for(state, exclude_recent=True)
    assert cands.history == ["a"]
    assert cands.search == ("red boots", T0 + 2 * MINUTE_MS)
    assert cands.exclude == {"a"}
    assert candidates_for(state_of(event(1, EventType.VIEW, "a", T0)),
                          exclude_recent=False).search is None


def test_docstring_examples_run() -> None:
    import doctest

    import streams.candidates.session

    assert doctest.testmod(streams.candidates.session).failed == 0
