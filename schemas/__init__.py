"""The public contracts: JSON Schema files for every message, and their Python codecs.

``event.schema.json`` (what producers write), ``recommendation.schema.json`` (what streamrec
writes), ``dead_letter.schema.json`` (what it writes for records it cannot process); one valid
example of each in ``examples/``. :mod:`schemas.codecs` decodes and encodes them,
:mod:`schemas.reasons` holds the stable reason codes, :mod:`schemas.errors` the exceptions.
"""

from schemas.codecs import (
    DEFAULT_LIMITS,
    SCHEMA_VERSION,
    DecodeLimits,
    Event,
    EventType,
    Rejection,
    build_recommendation,
    decode_dead_letter,
    decode_event,
    decode_events,
    encode_dead_letter,
    encode_recommendation,
    format_rfc3339_ms,
    parse_rfc3339_ms,
)
from schemas.errors import SchemasError, SchemaViolationError
from schemas.reasons import FallbackReason, RejectReason

__all__ = [
    "DEFAULT_LIMITS",
    "SCHEMA_VERSION",
    "DecodeLimits",
    "Event",
    "EventType",
    "FallbackReason",
    "RejectReason",
    "Rejection",
    "SchemaViolationError",
    "SchemasError",
    "build_recommendation",
    "decode_dead_letter",
    "decode_event",
    "decode_events",
    "encode_dead_letter",
    "encode_recommendation",
    "format_rfc3339_ms",
    "parse_rfc3339_ms",
]
