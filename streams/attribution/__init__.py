"""Online attribution: which recommendation a click, add-to-cart or purchase counts for.

Pure (no Faust, no I/O): :mod:`~streams.attribution.ledger` the per-user record of recent
recommendations and what was credited to them (stored in the user's
:class:`~streams.state.batch.UserRecord`) · :mod:`~streams.attribution.match` the matching
rules (``properties.recommendation_id``, else the latest recommendation within a window).
"""

from streams.attribution.ledger import (
    ATTRIBUTED_EVENT_TYPES,
    LEDGER_FORMAT_VERSION,
    InvalidLedgerError,
    Ledger,
    Shown,
)
from streams.attribution.match import (
    BY_ID,
    BY_WINDOW,
    AttributionWindows,
    Credit,
    attribute,
)

__all__ = [
    "ATTRIBUTED_EVENT_TYPES",
    "BY_ID",
    "BY_WINDOW",
    "LEDGER_FORMAT_VERSION",
    "AttributionWindows",
    "Credit",
    "InvalidLedgerError",
    "Ledger",
    "Shown",
    "attribute",
]
