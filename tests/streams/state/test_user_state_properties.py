"""apply_event properties over random event streams: order within the reorder window does not
matter, duplicates change nothing, bounds hold, bytes round-trip."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import Event, EventType
from streams.state.bounds import StateBounds
from streams.state.user_state import Outcome, UserState, apply_event, apply_events

T0 = 1_795_456_800_000
PROFILE = settings(max_examples=150, deadline=None)

small_bounds = st.builds(
    StateBounds,
    max_sequence_len=st.integers(1, 8),
    max_purchased=st.integers(0, 4),
    max_searches=st.integers(0, 3),
    dedup_window=st.integers(1, 12),
    session_gap_s=st.sampled_from([0.001, 1.0, 60.0, 1800.0]),
    reorder_window_s=st.sampled_from([0.0, 0.5, 5.0, 300.0]),
    user_ttl_s=st.just(86_400.0),
)


@st.composite
def event_lists(draw: st.DrawFn, max_size: int = 30) -> list[Event]:
    """Events of one user with distinct ids; few items, queries and times, so ties and
    repeats happen. Searches name no item and carry a query, as decoded ones do."""
    n = draw(st.integers(0, max_size))
    events = []
    for i in range(n):
        event_type = draw(st.sampled_from(list(EventType)))
        is_search = event_type is EventType.SEARCH
        events.append(Event(
            event_id=f"e{i}",
            event_type=event_type,
            user_id="u1",
            item_id=None if is_search else draw(st.sampled_from(["a", "b", "c", "d", "e"])),
            timestamp_ms=T0 + draw(st.integers(0, 600_000)),
            session_id=draw(st.sampled_from([None, None, "s1", "s2"])),
            properties={"query": draw(st.sampled_from(["q1", "q2", "Q1", "q3"]))}
            if is_search else None,
        ))
    return events


def fold(events: list[Event], bounds: StateBounds) -> UserState | None:
    return apply_events(None, events, bounds).state


@PROFILE
@given(event_lists(), small_bounds, st.data())
def test_shuffle_within_reorder_window_gives_the_sorted_sequence(
    events: list[Event], bounds: StateBounds, data: st.DataObject
) -> None:
    window_ms = int(bounds.reorder_window_s * 1000)
    # Each event is delayed by at most the window: it then arrives no later than any event
    # more than a window newer, so none is late.
    delays = [data.draw(st.integers(0, window_ms)) for _ in events]
    arrival = [e for _, _, e in sorted(
        zip((e.timestamp_ms + d for e, d in zip(events, delays, strict=True)), range(len(events)),
            events, strict=True))]
    by_time = sorted(events, key=lambda e: e.timestamp_ms)
    shuffled = apply_events(None, arrival, bounds)
    ordered = apply_events(None, by_time, bounds)
    assert shuffled.outcomes[Outcome.LATE] == 0
    if shuffled.state is None or ordered.state is None:
        assert shuffled.state is ordered.state is None
        return
    assert shuffled.state.recent == ordered.state.recent
    assert shuffled.state.counts == ordered.state.counts
    assert shuffled.state.newest_event == ordered.state.newest_event
    assert shuffled.state.searches == ordered.state.searches
    assert shuffled.state.purchases == ordered.state.purchases
    assert set(shuffled.state.purchased) <= {e.item_id for e in events}


@PROFILE
@given(event_lists(), small_bounds)
def test_recent_is_the_newest_events_in_time_order(
    events: list[Event], bounds: StateBounds
) -> None:
    folded = apply_events(None, events, bounds)
    if folded.state is None:
        return
    recent = folded.state.recent
    keys = [(e.event_time_ms, e.item_id, e.event_type) for e in recent]
    assert keys == sorted(keys)
    if folded.outcomes[Outcome.LATE] == 0:
        everything = sorted(
            (e.timestamp_ms, e.item_id, e.event_type) for e in events if e.item_id is not None)
        assert keys == everything[-bounds.max_sequence_len:]
        latest: dict[str, int] = {}
        for e in events:
            if e.query is not None:
                latest[e.query] = max(latest.get(e.query, e.timestamp_ms), e.timestamp_ms)
        expected = sorted(((t, q) for q, t in latest.items()))[-bounds.max_searches:]
        assert [(s.event_time_ms, s.query) for s in folded.state.searches] == (
            expected if bounds.max_searches else [])


@PROFILE
@given(event_lists(), small_bounds)
def test_applying_a_list_twice_equals_applying_it_once(
    events: list[Event], bounds: StateBounds
) -> None:
    events = events[: bounds.dedup_window]  # ids beyond the window are forgotten by design
    once = fold(events, bounds)
    twice = apply_events(once, events, bounds)
    assert twice.state == once
    assert twice.outcomes[Outcome.DUPLICATE] == len(events)


@PROFILE
@given(event_lists(), small_bounds)
def test_immediate_redelivery_changes_nothing(events: list[Event], bounds: StateBounds) -> None:
    doubled = [e for event in events for e in (event, event)]
    assert fold(doubled, bounds) == fold(events, bounds)


@PROFILE
@given(event_lists(), small_bounds)
def test_bounds_are_never_exceeded(events: list[Event], bounds: StateBounds) -> None:
    state: UserState | None = None
    for event in events:
        state, outcome = apply_event(state, event, bounds)
        assert len(state.recent) <= bounds.max_sequence_len
        assert len(state.purchased) <= bounds.max_purchased
        assert len(set(state.purchased)) == len(state.purchased)
        assert len(state.searches) <= bounds.max_searches
        assert len({s.query for s in state.searches}) == len(state.searches)
        assert list(state.searches) == sorted(state.searches, key=lambda s: (s[1], s[0]))
        assert list(state.purchases) == sorted(state.purchases, key=lambda p: (p[1], p[0]))
        assert len(state.recent_event_ids) <= bounds.dedup_window
        assert state.counts.total == state.events_applied
        assert all(entry.item_id is not None for entry in state.recent)
        times = [e.event_time_ms for e in state.recent] + [s[1] for s in state.searches]
        assert max(times, default=0) <= state.newest_event.event_time_ms
        if event.item_id is not None and outcome is Outcome.APPLIED:
            assert any(entry.item_id == event.item_id for entry in state.recent) or len(
                state.recent) == bounds.max_sequence_len


@PROFILE
@given(event_lists(), small_bounds)
def test_deterministic_and_round_trips_through_bytes(
    events: list[Event], bounds: StateBounds
) -> None:
    state = fold(events, bounds)
    assert fold(events, bounds) == state
    if state is not None:
        assert UserState.from_bytes(state.to_bytes()) == state


@PROFILE
@given(event_lists(max_size=15), event_lists(max_size=15), small_bounds)
def test_resuming_from_stored_bytes_is_the_same_as_never_stopping(
    first: list[Event], second: list[Event], bounds: StateBounds
) -> None:
    second = [Event(f"x{i}", e.event_type, e.user_id, e.item_id, e.timestamp_ms, e.session_id,
                    e.properties) for i, e in enumerate(second)]
    straight = fold(first + second, bounds)
    stored = fold(first, bounds)
    restored = None if stored is None else UserState.from_bytes(stored.to_bytes())
    assert apply_events(restored, second, bounds).state == straight
