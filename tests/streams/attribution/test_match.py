"""attribute(): credit by recommendation_id, else by window on the latest recommendation,
at most once per (recommendation, item, event type)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from schemas.events import Event, EventType
from streams.attribution.ledger import Ledger, Shown
from streams.attribution.match import (
    BY_ID,
    BY_WINDOW,
    AttributionWindows,
    Credit,
    attribute,
    replay,
)
from streams.settings import Settings
from streams.state.bounds import InvalidBoundsError

T0 = 1_795_456_800_000
MIN = 60_000
HOUR = 60 * MIN
WINDOWS = AttributionWindows()
OLD = Shown("r-old", T0 - HOUR, "exp", "A", "gru4rec", "2", ("a", "b", "c"))
LATEST = Shown("r-new", T0, "exp", "B", "gru4rec", "3", ("x", "b", "y"))
LEDGER = Ledger((OLD, LATEST))

CLICK, CART, PURCHASE = EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE


def ev(item: str | None, at: int, kind: EventType = CLICK, eid: str = "e1",
       **properties: Any) -> Event:
    return Event(eid, kind, "u1", item, at, properties=properties or None)


def one(ledger: Ledger, event: Event, windows: AttributionWindows = WINDOWS) -> Credit | None:
    _, credits = attribute(ledger, [event], windows)
    assert len(credits) <= 1
    return credits[0] if credits else None


# --- the window rule -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "window_ms"), [(CLICK, 30 * MIN), (CART, 30 * MIN), (PURCHASE, 24 * HOUR)]
)
def test_the_latest_recommendation_is_credited_within_the_window_of_the_type(
    kind: EventType, window_ms: int
) -> None:
    credit = one(LEDGER, ev("y", T0 + window_ms, kind))
    assert credit is not None
    assert (credit.shown, credit.item_id, credit.position, credit.delay_ms,
            credit.matched_by) == (LATEST, "y", 3, window_ms, BY_WINDOW)
    assert one(LEDGER, ev("y", T0 + window_ms + 1, kind)) is None


def test_an_interaction_before_the_recommendation_was_generated_is_not_credited() -> None:
    assert one(LEDGER, ev("x", T0 - 1)) is None
    at_generation = one(LEDGER, ev("x", T0))
    assert at_generation is not None and at_generation.delay_ms == 0


def test_only_the_latest_recommendation_counts_for_the_window_rule() -> None:
    assert one(LEDGER, ev("a", T0 + MIN)) is None  # only in the older one
    credit = one(LEDGER, ev("b", T0 + MIN))  # in both: the latest
    assert credit is not None and credit.shown == LATEST and credit.position == 2


def test_an_item_not_shown_is_not_credited() -> None:
    assert one(LEDGER, ev("zzz", T0 + MIN)) is None


@pytest.mark.parametrize("kind", [EventType.VIEW, EventType.SEARCH])
def test_views_and_searches_are_never_credited(kind: EventType) -> None:
    item = None if kind is EventType.SEARCH else "x"
    ledger, credits = attribute(LEDGER, [ev(item, T0 + 1, kind, recommendation_id="r-new")],
                                WINDOWS)
    assert credits == [] and ledger is LEDGER


def test_an_empty_ledger_credits_nothing() -> None:
    assert attribute(Ledger(), [ev("x", T0)], WINDOWS) == (Ledger(), [])


def test_custom_windows() -> None:
    windows = AttributionWindows(click_s=1.0, cart_s=2.0, purchase_s=3.0)
    assert one(LEDGER, ev("x", T0 + 1_000), windows) is not None
    assert one(LEDGER, ev("x", T0 + 1_001), windows) is None
    assert one(LEDGER, ev("x", T0 + 2_000, CART), windows) is not None
    assert one(LEDGER, ev("x", T0 + 3_000, PURCHASE), windows) is not None
    assert one(LEDGER, ev("x", T0 + 3_001, PURCHASE), windows) is None


# --- by recommendation_id ------------------------------------------------------------------


def test_a_known_recommendation_id_is_credited_outside_any_window() -> None:
    credit = one(LEDGER, ev("a", T0 + 48 * HOUR, recommendation_id="r-old"))
    assert credit is not None
    assert (credit.shown, credit.position, credit.delay_ms, credit.matched_by) == (
        OLD, 1, 49 * HOUR, BY_ID)


def test_by_id_a_skewed_clock_still_credits_with_zero_delay() -> None:
    credit = one(LEDGER, ev("x", T0 - 5 * MIN, recommendation_id="r-new"))
    assert credit is not None and credit.delay_ms == 0 and credit.matched_by == BY_ID


def test_by_id_picks_the_named_recommendation_not_the_latest() -> None:
    credit = one(LEDGER, ev("b", T0 + MIN, recommendation_id="r-old"))
    assert credit is not None and credit.shown == OLD and credit.position == 2


@pytest.mark.parametrize("rec_id", ["r-unknown", "r-old", 42, None, ""])
def test_an_unknown_id_or_one_that_did_not_show_the_item_falls_back_to_the_window(
    rec_id: object
) -> None:
    credit = one(LEDGER, ev("x", T0 + MIN, recommendation_id=rec_id))  # x is not in r-old
    assert credit is not None and credit.shown == LATEST and credit.matched_by == BY_WINDOW
    assert one(LEDGER, ev("x", T0 + 2 * HOUR, recommendation_id=rec_id)) is None


# --- at most once --------------------------------------------------------------------------


def test_each_key_is_credited_once_and_recorded_in_the_ledger() -> None:
    events = [ev("x", T0 + MIN, eid="e1"), ev("x", T0 + 2 * MIN, eid="e2"),
              ev("x", T0 + 3 * MIN, CART, eid="e3"), ev("b", T0 + 4 * MIN, eid="e4",
                                                        recommendation_id="r-old"),
              ev("b", T0 + 5 * MIN, eid="e5")]
    ledger, credits = attribute(LEDGER, events, WINDOWS)
    assert [(c.event.event_id, c.shown.recommendation_id) for c in credits] == [
        ("e1", "r-new"), ("e3", "r-new"), ("e4", "r-old"), ("e5", "r-new")]
    assert [c.key for c in credits] == [
        "r-new:x:click", "r-new:x:add_to_cart", "r-old:b:click", "r-new:b:click"]
    assert ledger.find("r-new").credited == {  # type: ignore[union-attr]
        ("x", "click"), ("x", "add_to_cart"), ("b", "click")}
    assert ledger.find("r-old").credited == {("b", "click")}  # type: ignore[union-attr]
    assert LEDGER.find("r-new").credited == frozenset()  # type: ignore[union-attr]
    # replayed after a crash (not deduplicated): nothing counts twice
    again, more = attribute(ledger, events, WINDOWS)
    assert more == [] and again is ledger


# --- replay after a crash -------------------------------------------------------------------


def test_replayed_events_announce_again_exactly_the_credits_they_earned() -> None:
    """A crash after the state (with its credits) was written, before the attribution
    records were acknowledged: the redelivered duplicates give the same records back."""
    events = [ev("x", T0 + MIN, eid="e1"), ev("x", T0 + 2 * MIN, eid="e2"),
              ev("x", T0 + 3 * MIN, CART, eid="e3"),
              ev("b", T0 + 4 * MIN, eid="e4", recommendation_id="r-old"),
              ev("b", T0 + 5 * MIN, eid="e5"), ev("z", T0 + 6 * MIN, eid="e6"),
              ev("b", T0 + 7 * MIN, PURCHASE, eid="e7", price=4.0)]
    ledger, credits = attribute(LEDGER, events, WINDOWS)
    # the new recommendation this batch made is recorded after its credits
    ledger = ledger.record(Shown("r-next", T0 + 8 * MIN, "exp", "B", "gru4rec", "3",
                                 ("b", "x")), capacity=8)
    replayed = replay(ledger, events, WINDOWS)

    def described(found: list[Credit]) -> list[tuple[str, int, int, float | None, str]]:
        return [(c.key, c.position, c.delay_ms, c.revenue, c.matched_by) for c in found]

    assert described(replayed) == described(credits)
    assert [c.event.event_id for c in replayed] == ["e1", "e3", "e4", "e5", "e7"]


def test_replay_announces_only_credited_keys_and_each_once() -> None:
    # nothing credited yet: a replay credits nothing (that is attribute's job)
    assert replay(LEDGER, [ev("x", T0 + MIN), ev("b", T0 + MIN, eid="e2",
                                                  recommendation_id="r-old")], WINDOWS) == []
    assert replay(Ledger(), [ev("x", T0 + MIN)], WINDOWS) == []
    ledger, _ = attribute(LEDGER, [ev("x", T0 + MIN)], WINDOWS)
    twice = replay(ledger, [ev("x", T0 + MIN), ev("x", T0 + 2 * MIN, eid="e2")], WINDOWS)
    assert [c.key for c in twice] == ["r-new:x:click"]
    # outside the window, or an item not shown: nothing
    late = T0 + int(WINDOWS.click_s * 1000) + 1
    assert replay(ledger, [ev("x", late), ev("q", T0 + MIN)], WINDOWS) == []


def test_a_credited_key_by_id_does_not_fall_through_to_the_window() -> None:
    ledger, _ = attribute(LEDGER, [ev("b", T0 + MIN, recommendation_id="r-old")], WINDOWS)
    assert one(ledger, ev("b", T0 + 2 * MIN, eid="e2", recommendation_id="r-old")) is None


def test_credits_keep_the_shown_as_it_was_before_the_credit() -> None:
    _, credits = attribute(LEDGER, [ev("x", T0 + 1), ev("y", T0 + 2, eid="e2")], WINDOWS)
    assert [c.shown for c in credits] == [LATEST, LATEST]


# --- revenue -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "revenue"),
    [
        ({"price": 9.5}, 9.5),
        ({"price": 9.5, "quantity": 2}, 19.0),
        ({"price": 3, "quantity": 3}, 9.0),
        ({"price": 0}, 0.0),
        ({}, None),
        ({"price": -1}, None),
        ({"price": "9.5"}, None),
        ({"price": True}, None),
        ({"price": float("nan")}, None),
        ({"price": 9.5, "quantity": 0}, None),
        ({"price": 9.5, "quantity": 1.0}, None),
        ({"price": 9.5, "quantity": True}, None),
        ({"price": 9.5, "quantity": None}, None),
        ({"price": 1e308, "quantity": 10}, None),  # overflows to inf
        ({"price": 1.5, "quantity": 10**400}, None),  # too large for a float
    ],
)
def test_purchase_revenue(properties: dict[str, Any], revenue: float | None) -> None:
    credit = one(LEDGER, ev("x", T0 + MIN, PURCHASE, **properties))
    assert credit is not None and credit.revenue == revenue


def test_clicks_and_carts_have_no_revenue() -> None:
    ledger, credits = attribute(
        LEDGER, [ev("x", T0, CLICK, price=5.0), ev("x", T0, CART, eid="e2", price=5.0)], WINDOWS)
    assert [c.revenue for c in credits] == [None, None]


# --- windows -------------------------------------------------------------------------------


def test_windows_default_to_the_settings_defaults() -> None:
    defaults = Settings.model_fields
    assert AttributionWindows() == AttributionWindows(
        defaults["attribution_click_window_s"].default,
        defaults["attribution_cart_window_s"].default,
        defaults["attribution_purchase_window_s"].default,
    )


def test_windows_from_settings() -> None:
    settings = SimpleNamespace(attribution_click_window_s=1.0, attribution_cart_window_s=2.0,
                               attribution_purchase_window_s=3.0)
    windows = AttributionWindows.from_settings(settings)  # type: ignore[arg-type]
    assert windows == AttributionWindows(1.0, 2.0, 3.0)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True, "60"])
def test_windows_must_be_finite_and_positive(bad: object) -> None:
    with pytest.raises(InvalidBoundsError, match="click_s"):
        AttributionWindows(click_s=bad)  # type: ignore[arg-type]
