"""attribute / Ledger over random ledgers and event streams: only shown items are credited,
never twice per key, the capacity holds, bytes round-trip and anything else fails cleanly."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import Event, EventType
from streams.attribution.ledger import ATTRIBUTED_EVENT_TYPES, Ledger, Shown
from streams.attribution.match import BY_ID, BY_WINDOW, AttributionWindows, attribute
from streams.state.bounds import StateDecodeError

T0 = 1_795_456_800_000
# 100 examples: the two ledger properties took 50 s each at 200 on a busy 2-core runner.
PROFILE = settings(max_examples=100, deadline=None)
ITEMS = ["a", "b", "c", "d", "e", "f"]
IDS = ["r0", "r1", "r2", "r3", "r4", "r5"]
HOUR = 3_600_000
labels = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)


@st.composite
def shown_lists(draw: st.DrawFn) -> list[Shown]:
    """Recommendations with distinct ids, some items credited already."""
    ids = draw(st.lists(st.sampled_from(IDS), unique=True, max_size=5))
    out = []
    for rec_id in ids:
        items = tuple(draw(st.lists(st.sampled_from(ITEMS), max_size=4)))
        credited = frozenset(draw(st.lists(
            st.tuples(st.sampled_from(items), st.sampled_from(sorted(ATTRIBUTED_EVENT_TYPES))),
            max_size=3))) if items else frozenset()
        out.append(Shown(rec_id, T0 + draw(st.integers(-HOUR, HOUR)),
                         draw(st.none() | labels), draw(st.none() | labels),
                         draw(labels), draw(labels), items,
                         frozenset((item, str(kind)) for item, kind in credited)))
    return out



@st.composite
def event_lists(draw: st.DrawFn) -> list[Event]:
    n = draw(st.integers(0, 25))
    events = []
    for i in range(n):
        kind = draw(st.sampled_from(list(EventType)))
        item = None if kind is EventType.SEARCH else draw(st.sampled_from(ITEMS + ["zz"]))
        properties: dict[str, Any] | None = draw(st.sampled_from([
            None, {}, {"price": 2.5}, {"price": 3, "quantity": 2}, {"quantity": 0},
        ]))
        rec_id = draw(st.none() | st.sampled_from(IDS + ["unknown"]))
        if rec_id is not None:
            properties = {**(properties or {}), "recommendation_id": rec_id}
        events.append(Event(f"e{i}", kind, "u1", item,
                            T0 + draw(st.integers(-HOUR, 30 * HOUR)), properties=properties))
    return events


windows = st.builds(AttributionWindows,
                    click_s=st.sampled_from([1.0, 1800.0]),
                    cart_s=st.sampled_from([60.0, 1800.0]),
                    purchase_s=st.sampled_from([3600.0, 86400.0]))


@PROFILE
@given(shown_lists(), event_lists(), windows)
def test_credits_only_shown_items_once_per_key_and_the_ledger_says_so(
    shown: list[Shown], events: list[Event], windows: AttributionWindows
) -> None:
    before = Ledger(tuple(shown))
    after, credits = attribute(before, events, windows)
    keys = [(c.shown.recommendation_id, c.item_id, str(c.event.event_type)) for c in credits]
    assert len(keys) == len(set(keys))
    assert [s.recommendation_id for s in after.shown] == [s.recommendation_id for s in shown]
    for credit in credits:
        assert credit.event.event_type in ATTRIBUTED_EVENT_TYPES
        assert credit.shown.items[credit.position - 1] == credit.item_id == credit.event.item_id
        assert (credit.item_id, str(credit.event.event_type)) not in credit.shown.credited
        assert credit.delay_ms >= 0
        if credit.matched_by == BY_WINDOW:
            assert credit.shown is before.latest()
        else:
            assert credit.matched_by == BY_ID
            assert credit.event.properties is not None
            assert credit.event.properties["recommendation_id"] == credit.shown.recommendation_id
        if credit.event.event_type != EventType.PURCHASE:
            assert credit.revenue is None
    for old, new in zip(before.shown, after.shown, strict=True):
        added = {(item, kind) for rec_id, item, kind in keys if rec_id == old.recommendation_id}
        assert new.credited == old.credited | added
        assert new.items == old.items and new.generated_at_ms == old.generated_at_ms
    # replaying the whole batch (as after a crash) credits nothing more
    assert attribute(after, events, windows) == (after, [])


@PROFILE
@given(shown_lists(), event_lists(), windows)
def test_one_batch_or_event_by_event_gives_the_same_credits(
    shown: list[Shown], events: list[Event], windows: AttributionWindows
) -> None:
    ledger, together = attribute(Ledger(tuple(shown)), events, windows)
    one_by_one, apart = Ledger(tuple(shown)), []
    for event in events:
        one_by_one, credits = attribute(one_by_one, [event], windows)
        apart.extend(credits)
    assert one_by_one == ledger
    assert [(c.key, c.event, c.delay_ms, c.position) for c in apart] == [
        (c.key, c.event, c.delay_ms, c.position) for c in together]


@PROFILE
@given(shown_lists(), st.integers(1, 4))
def test_record_respects_the_capacity_and_keeps_the_newest(
    shown: list[Shown], capacity: int
) -> None:
    ledger = Ledger()
    for entry in shown:
        ledger = ledger.record(entry, capacity)
        assert len(ledger.shown) <= capacity
        assert ledger.latest() == entry
    assert list(ledger.shown) == shown[-capacity:]


@PROFILE
@given(shown_lists())
def test_bytes_round_trip(shown: list[Shown]) -> None:
    ledger = Ledger(tuple(shown))
    assert Ledger.from_bytes(ledger.to_bytes()) == ledger


@PROFILE
@given(st.binary(max_size=200) | shown_lists().map(
    lambda s: Ledger(tuple(s)).to_bytes()).flatmap(
    lambda raw: st.integers(0, max(len(raw) - 1, 0)).map(lambda cut: raw[:cut] + b"]")))
def test_arbitrary_bytes_decode_or_raise_state_decode_error(payload: bytes) -> None:
    with contextlib.suppress(StateDecodeError):
        Ledger.from_bytes(payload)


@PROFILE
@given(shown_lists(), shown_lists(), event_lists(), windows, st.integers(1, 4))
def test_a_ledger_read_from_bytes_writes_what_a_fresh_one_writes(
    shown: list[Shown], new: list[Shown], events: list[Event], windows: AttributionWindows,
    capacity: int,
) -> None:
    fresh = Ledger(tuple(shown))
    read = Ledger.from_bytes(fresh.to_bytes())
    fresh, _ = attribute(fresh, events, windows)
    read, _ = attribute(read, events, windows)
    for entry in new:  # recording may reuse an id already in the ledger
        fresh, read = fresh.record(entry, capacity), read.record(entry, capacity)
        assert read == fresh
        assert read.to_bytes() == fresh.to_bytes()
        assert Ledger.from_bytes(read.to_bytes()) == fresh
