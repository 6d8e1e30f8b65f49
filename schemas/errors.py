"""Errors raised by the schemas package.

Bad *input events* are never raised: :func:`schemas.events.decode_event` returns a
:class:`~schemas.events.Rejection` for them. These exceptions are for programming and
configuration mistakes on our side: a message we were about to produce breaks its contract,
or a limit makes no sense.
"""

from __future__ import annotations

from streams.errors import StreamrecError


class SchemasError(StreamrecError):
    """Root of every error the schemas package raises; a :class:`StreamrecError`."""


class SchemaViolationError(SchemasError, ValueError):
    """A message does not match its schema file (or a rule the schema documents).

    Raised when encoding a recommendation or dead letter that breaks
    ``schemas/<name>.schema.json``, or when a dead letter read back is not one. ``schema`` names
    the file, ``path`` the offending field (e.g. ``items[3].score``), ``rule`` the broken
    keyword. Fix the code that built the message; the schema is the public contract, so change
    the schema only together with its ``schema_version`` and its consumers.
    """

    def __init__(self, message: str, *, schema: str, path: str = "", rule: str = "") -> None:
        super().__init__(message)
        self.schema = schema
        self.path = path
        self.rule = rule


class InvalidLimitsError(SchemasError, ValueError):
    """A :class:`~schemas.events.DecodeLimits` field has an impossible value.

    Sizes and windows must be positive and the topic routing map must name only known event
    types. Fix the setting it came from (the message names the field).
    """


class InvalidTimestampError(SchemasError, ValueError):
    """A string is not an RFC 3339 date-time with an offset, or is outside years 1-9999.

    Expected form: ``2026-11-23T18:00:00.123Z`` or ``2026-11-23T19:00:00+01:00``. A date-time
    without an offset is ambiguous and rejected; add ``Z`` if it is UTC.
    """
