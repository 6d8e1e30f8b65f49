"""The public contracts: JSON Schema files for every message, and their Python codecs.

``event.schema.json`` (what producers write), ``recommendation.schema.json`` (what streamrec
writes), ``dead_letter.schema.json`` (what it writes for records it cannot process); one valid
example of each in ``examples/``. :mod:`schemas.events`, :mod:`schemas.recommendations` and
:mod:`schemas.dead_letters` are their codecs, one module per message; :mod:`schemas.timestamps`
the RFC 3339 rules they share,
:mod:`schemas.contract` the schema files themselves, :mod:`schemas.reasons` the stable reason
codes and :mod:`schemas.errors` the exceptions.
"""

from schemas.contract import SCHEMA_VERSION
from schemas.dead_letters import decode_dead_letter, encode_dead_letter
from schemas.errors import SchemasError, SchemaViolationError
from schemas.events import (
    DEFAULT_LIMITS,
    DecodeLimits,
    Event,
    EventType,
    Rejection,
    decode_event,
    decode_events,
)
from schemas.reasons import FallbackReason, RejectReason
from schemas.recommendations import build_recommendation, encode_recommendation
from schemas.timestamps import format_rfc3339_ms, parse_rfc3339_ms

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
