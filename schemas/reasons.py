"""Stable machine-readable codes: why an event was rejected, why a recommendation fell back.

These strings are part of the public contract. They appear in dead letters (``reason``), in
recommendations (``fallback``) and as metric label values, so dashboards, alerts and replay
tools can match on them. Never rename or reuse a code; add new ones (and add them to the
schema file's ``enum``, a test checks the two agree).

A null or empty Kafka record key is *not* a rejection: producers may key their records any
way they like, and streamrec re-keys every event by ``user_id`` before it touches state.
"""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """Why an input record went to the dead-letter topic instead of being processed.

    Checked roughly in this order: bytes, then JSON, then the event schema, then the rules
    that need context (topic routing, the clock).
    """

    EMPTY_PAYLOAD = "empty_payload"
    """The record value is absent (tombstone), zero bytes, or only whitespace."""

    OVERSIZED_PAYLOAD = "oversized_payload"
    """The value is larger than ``DecodeLimits.max_payload_bytes`` (default 64 KiB)."""

    NOT_UTF8 = "not_utf8"
    """The value is not valid UTF-8, so it cannot be JSON."""

    INVALID_JSON = "invalid_json"
    """UTF-8, but not one well-formed JSON document (a UTF-8 BOM counts as malformed)."""

    NOT_AN_OBJECT = "not_an_object"
    """Well-formed JSON whose top level is not an object (an array, string, number...)."""

    MISSING_FIELD = "missing_field"
    """A required field (event_id, event_type, user_id, item_id, timestamp) is absent."""

    WRONG_TYPE = "wrong_type"
    """A known field has the wrong JSON type (e.g. user_id is a number)."""

    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    """event_type is a string but not one of view, click, add_to_cart, purchase."""

    WRONG_TOPIC = "wrong_topic"
    """A valid event type that does not belong on the topic it arrived on."""

    INVALID_ID = "invalid_id"
    """An id field is empty, longer than 256 characters, or holds control characters."""

    INVALID_TIMESTAMP = "invalid_timestamp"
    """timestamp is a string that is not an RFC 3339 date-time with offset, or names a day
    that does not exist (e.g. February 30)."""

    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    """timestamp is a real instant but too far in the future or the past (bounds in
    ``DecodeLimits``), or before 1970 (negative epoch milliseconds)."""

    SCHEMA_VIOLATION = "schema_violation"
    """Anything else the event schema rejects (e.g. a negative price, schema_version "2")."""

    PROCESSING_ERROR = "processing_error"
    """The event decoded fine but the stream failed while processing it."""

    KEY_MISMATCH = "key_mismatch"
    """An item or rule record whose Kafka key is not the item_id or rule_id it names (items
    and rules topics only: they are compacted by key, so such a record could never be
    replaced or removed)."""

    OVERSIZED_QUERY = "oversized_query"
    """``properties.query`` is longer than the event schema allows: 512 characters on a search
    (``schemas.events.MAX_QUERY_CHARS``), 1024 on the other event types. A search without a
    query is ``missing_field``; a search with an ``item_id`` is ``schema_violation``."""


class FallbackReason(StrEnum):
    """Why a recommendation did not come from the model (``fallback`` in the message).

    A recommendation with ``fallback: null`` was ranked by the model named in ``model``; any
    other value marks a fallback, ranked by the source named in ``model`` (e.g. trending).
    """

    NO_HISTORY = "no_history"
    """The user has no interaction the model can use yet (cold start)."""

    UNKNOWN_ITEMS = "unknown_items"
    """The user's history holds only items the model's vocabulary does not know."""

    NO_MODEL = "no_model"
    """No model is loaded (none deployed yet, or the model directory failed to load)."""

    SCORING_ERROR = "scoring_error"
    """The model failed while scoring this batch."""
