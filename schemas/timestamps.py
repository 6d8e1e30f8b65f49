"""RFC 3339 date-times <-> epoch milliseconds, as every contract writes them.

>>> format_rfc3339_ms(parse_rfc3339_ms("2026-11-23T19:00:00.123+01:00"))
'2026-11-23T18:00:00.123Z'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from schemas.contract import short
from schemas.errors import InvalidTimestampError

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
# Same pattern as the event schema's timestamp string (a test checks they are equal).
RFC3339_PATTERN: Final = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]"
    r":[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])(?![\s\S])"
)
_RFC3339 = re.compile(RFC3339_PATTERN)
MIN_MS: Final = -62_135_596_800_000  # 0001-01-01T00:00:00.000Z
MAX_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def parse_rfc3339_ms(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 date-time with offset (sub-ms digits are
    dropped, rounding toward the past).

    >>> parse_rfc3339_ms("1970-01-01T01:00:00.0019+01:00")
    1

    Raises :class:`~schemas.errors.InvalidTimestampError` for anything else: no offset, a
    day that does not exist, a leap second, a year outside 1-9999.
    """
    if len(text) > 64 or _RFC3339.match(text) is None:
        raise InvalidTimestampError(f"not an RFC 3339 date-time with offset: {short(text)}")
    try:
        parsed = datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise InvalidTimestampError(f"{short(text)} is not a real date-time: {exc}") from exc
    return (parsed - EPOCH) // _ONE_MS


def format_rfc3339_ms(ms: int) -> str:
    """``2026-11-23T18:00:00.123Z`` for epoch milliseconds (always UTC, three digits).

    Raises :class:`~schemas.errors.InvalidTimestampError` outside years 1-9999.
    """
    if not MIN_MS <= ms <= MAX_MS:
        raise InvalidTimestampError(f"{ms} ms is outside years 1-9999")
    t = EPOCH + timedelta(milliseconds=ms)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond // 1000:03d}Z"
    )


# ---------------------------------------------------------------------------------------------
# Events


