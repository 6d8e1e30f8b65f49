"""Which recommendation a click, add-to-cart or purchase counts for (pure: no I/O, no clock).

An interaction with an item is credited to the recommendation that showed it:

1. **By id.** If ``properties.recommendation_id`` is a string naming a recommendation still
   in the user's ledger, and that recommendation showed the item, it gets the credit
   whatever the times say (the UI proves the item was shown; a skewed client clock must not
   drop it): ``delay_ms`` is then ``max(0, event time - generated_at)``. An id the ledger
   does not know (too old, or made up), or one that did not show the item, falls through to
   rule 2.
2. **By window.** Otherwise the user's *latest* recommendation gets it if it showed the item
   and the interaction comes ``0 <= event time - generated_at <= window`` after it was
   generated, the window depending on the type (:class:`AttributionWindows`). An
   interaction timestamped before the recommendation cannot have been caused by it.

Each ``(recommendation, item, event type)`` is credited at most once: the key goes into the
recommendation's :attr:`~streams.attribution.ledger.Shown.credited`, which is stored with
the user's state, so an interaction replayed after a crash cannot count twice.

A crash can land after the state (with its credits) was written and before the attribution
records were acknowledged; the interaction then comes back as a duplicate. :func:`replay`
announces again the credits such an interaction may have earned (keys already in
``credited``), so the log loses none; the report collapses what it gets twice (one
attribution per ``recommendation_id:item_id:event_type``).

Cost: :func:`attribute` runs for every touched user. A batch without a click, add_to_cart or
purchase, or a user without a recommendation, returns at once (at most one pass over the
events, about 0.4 µs for five); otherwise each interaction costs a scan of the ledger (at
most ``attribution_ledger_size`` entries) and of one recommendation's items (two
interactions against 8 recommendations of 20 items: about 10 µs).

>>> from schemas.events import Event
>>> from streams.attribution.ledger import Ledger, Shown
>>> ledger = Ledger((Shown("r1", 1_000, None, None, "gru4rec", "3", ("a", "b")),))
>>> click = Event("e1", "click", "u1", "b", 61_000)
>>> ledger, credits = attribute(ledger, [click], AttributionWindows())
>>> [(c.shown.recommendation_id, c.position, c.delay_ms, c.matched_by) for c in credits]
[('r1', 2, 60000, 'window')]
>>> attribute(ledger, [click], AttributionWindows())[1]  # the same key again: no credit
[]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from schemas.events import Event, EventType
from streams.attribution.ledger import ATTRIBUTED_EVENT_TYPES, Ledger, Shown
from streams.state.bounds import check_positive_number

if TYPE_CHECKING:
    from streams.settings import Settings

BY_ID: Final = "recommendation_id"
"""``Credit.matched_by`` when ``properties.recommendation_id`` named the recommendation."""
BY_WINDOW: Final = "window"
"""``Credit.matched_by`` when the window rule matched the latest recommendation."""


@dataclass(frozen=True)
class AttributionWindows:
    """How long after a recommendation was generated an interaction without a (known)
    ``recommendation_id`` still counts for it, per event type (seconds)."""

    click_s: float = 1800.0
    cart_s: float = 1800.0
    purchase_s: float = 86400.0

    def __post_init__(self) -> None:
        for name in ("click_s", "cart_s", "purchase_s"):
            check_positive_number(getattr(self, name), f"AttributionWindows.{name}")

    @classmethod
    def from_settings(cls, settings: Settings) -> AttributionWindows:
        """The windows of ``STREAMREC_ATTRIBUTION_{CLICK,CART,PURCHASE}_WINDOW_S``."""
        return cls(
            click_s=settings.attribution_click_window_s,
            cart_s=settings.attribution_cart_window_s,
            purchase_s=settings.attribution_purchase_window_s,
        )

    def window_ms(self) -> Mapping[str, int]:
        """Window per attributed event type, in whole milliseconds."""
        return {
            EventType.CLICK: int(self.click_s * 1000),
            EventType.ADD_TO_CART: int(self.cart_s * 1000),
            EventType.PURCHASE: int(self.purchase_s * 1000),
        }


@dataclass(frozen=True, slots=True)
class Credit:
    """One interaction attributed to one recommendation."""

    shown: Shown
    """The recommendation credited, as it was in the ledger given to :func:`attribute`
    (its ``credited`` without this batch's credits)."""
    item_id: str
    position: int
    """1-based rank of the item in the recommendation."""
    event: Event
    delay_ms: int
    """Event time minus the recommendation's generation time, never negative."""
    revenue: float | None
    """Purchases only: ``properties.price * properties.quantity`` (quantity defaults to 1)
    when price is a number >= 0 and quantity an int >= 1; otherwise, and for clicks and
    carts, None."""
    matched_by: str
    """:data:`BY_ID` or :data:`BY_WINDOW`."""

    @property
    def key(self) -> str:
        """``recommendation_id:item_id:event_type``, what a report deduplicates on."""
        return f"{self.shown.recommendation_id}:{self.item_id}:{self.event.event_type}"


def attribute(
    ledger: Ledger, events: Sequence[Event], windows: AttributionWindows
) -> tuple[Ledger, list[Credit]]:
    """Credit one user's fresh (non-duplicate) events of a micro-batch, in arrival order.

    ``ledger`` is the user's ledger before this batch's new recommendation is recorded.
    Returns the ledger with every credit added to its recommendation's ``credited`` (the
    very same object when nothing was credited) and the credits in event order.
    """
    if not ledger.shown or not any(
        event.event_type in ATTRIBUTED_EVENT_TYPES and event.item_id is not None
        for event in events
    ):
        return ledger, []
    shown = ledger.shown
    latest = len(shown) - 1
    added: dict[str, set[tuple[str, str]]] = {}
    credits: list[Credit] = []
    window_ms = windows.window_ms()
    for event in events:
        window = window_ms.get(event.event_type)
        item_id = event.item_id
        if window is None or item_id is None:
            continue
        match = _by_id(shown, event, item_id)
        if match is None:
            candidate = shown[latest]
            delay = event.timestamp_ms - candidate.generated_at_ms
            position = candidate.position(item_id) if 0 <= delay <= window else None
            if position is None:
                continue
            match = candidate, position, delay, BY_WINDOW
        target, position, delay, matched_by = match
        key = (item_id, str(event.event_type))
        done = added.setdefault(target.recommendation_id, set())
        if key in target.credited or key in done:
            continue
        done.add(key)
        credits.append(Credit(target, item_id, position, event, delay,
                              _revenue(event), matched_by))
    if not credits:
        return ledger, []
    return ledger.with_credited(added), credits


def replay(ledger: Ledger, events: Sequence[Event], windows: AttributionWindows
           ) -> list[Credit]:
    """The credits one user's replayed (duplicate) events earned when first applied, found
    in ``ledger``: by id as :func:`attribute` matches, else the newest recommendation that
    credited the key and whose window holds the event. Only keys already credited come back,
    so nothing is credited that the ledger does not hold; the ledger is unchanged."""
    if not ledger.shown:
        return []
    shown = ledger.shown
    window_ms = windows.window_ms()
    announced: set[tuple[str, str, str]] = set()
    credits: list[Credit] = []
    for event in events:
        window = window_ms.get(event.event_type)
        item_id = event.item_id
        if window is None or item_id is None:
            continue
        key = (item_id, str(event.event_type))
        match = _by_id(shown, event, item_id)
        if match is None:
            match = _credited_in_window(shown, event, item_id, key, window)
        if match is None or key not in match[0].credited:
            continue
        target, position, delay, matched_by = match
        if (target.recommendation_id, *key) in announced:
            continue
        announced.add((target.recommendation_id, *key))
        credits.append(Credit(target, item_id, position, event, delay, _revenue(event),
                              matched_by))
    return credits


def _credited_in_window(
    shown: tuple[Shown, ...], event: Event, item_id: str, key: tuple[str, str], window: int
) -> tuple[Shown, int, int, str] | None:
    """The newest recommendation that credited ``key`` with the event inside its window."""
    for candidate in reversed(shown):
        delay = event.timestamp_ms - candidate.generated_at_ms
        if key in candidate.credited and 0 <= delay <= window:
            position = candidate.position(item_id)
            if position is not None:
                return candidate, position, delay, BY_WINDOW
    return None


def _by_id(
    shown: tuple[Shown, ...], event: Event, item_id: str
) -> tuple[Shown, int, int, str] | None:
    """(recommendation, position, delay, BY_ID) when ``properties.recommendation_id`` names
    a recommendation in the ledger that showed the item."""
    properties = event.properties
    if not properties:
        return None
    rec_id = properties.get("recommendation_id")
    if not isinstance(rec_id, str):
        return None
    for candidate in reversed(shown):
        if candidate.recommendation_id == rec_id:
            position = candidate.position(item_id)
            if position is None:
                return None
            delay = max(0, event.timestamp_ms - candidate.generated_at_ms)
            return candidate, position, delay, BY_ID
    return None


def _revenue(event: Event) -> float | None:
    """``price * quantity`` of a purchase whose properties hold a valid price (number >= 0)
    and quantity (int >= 1, default 1); None otherwise."""
    if event.event_type != EventType.PURCHASE or not event.properties:
        return None
    price: Any = event.properties.get("price")
    quantity: Any = event.properties.get("quantity", 1)
    if type(price) not in (int, float) or not price >= 0:  # `not >=` also rejects NaN
        return None
    if type(quantity) is not int or quantity < 1:
        return None
    try:
        revenue = float(price * quantity)
    except OverflowError:
        return None
    return revenue if math.isfinite(revenue) else None
