"""Decode and validate input events: the Python side of ``event.schema.json``.

The schema file is the contract; it is read from the package and compiled once, at import,
with fastjsonschema. An event is
accepted only if the event schema accepts it: a fast path recognises the common shapes in a
third of the compiled validator's time, and anything it is not sure of goes to the compiled
schema, which also names the precise reason for a rejection. The fast path is switched off
if the schema file changes (fingerprint check), and tests hold both to ``jsonschema``'s
reference validation of the same file. On top of the schema, :func:`decode_event` applies the
rules that need context: which event types a topic carries and how far the timestamp may be
from now (:class:`DecodeLimits`).

:func:`decode_event` never raises on input data. It returns an :class:`Event`, or a
:class:`Rejection` whose ``reason`` is a stable :class:`~schemas.reasons.RejectReason` code:

>>> raw = (b'{"event_id": "e-1", "event_type": "view", "user_id": "u-1",'
...        b' "item_id": "sku-9", "timestamp": "2026-11-23T18:00:00.123Z"}')
>>> from schemas.timestamps import parse_rfc3339_ms
>>> now = parse_rfc3339_ms("2026-11-23T18:00:05Z")
>>> event = decode_event(raw, "views", DEFAULT_LIMITS, now_ms=now)
>>> event.user_id, event.event_type, event.timestamp_ms
('u-1', <EventType.VIEW: 'view'>, 1795456800123)
>>> decode_event(raw, "purchases", DEFAULT_LIMITS, now_ms=now).reason
<RejectReason.WRONG_TOPIC: 'wrong_topic'>
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

import fastjsonschema
import orjson

from schemas.contract import (
    CONTROL_CHAR,
    ID_PATTERN,
    SCHEMA_VERSION,
    compile_schema,
    field_name,
    load_schema,
    schema_fingerprint,
    short,
)
from schemas.errors import InvalidLimitsError
from schemas.reasons import RejectReason
from schemas.timestamps import EPOCH, RFC3339_PATTERN


class EventType(StrEnum):
    """What an event records (the event schema's ``event_type`` enum, in its order).

    Stored state encodes a type by its index here: new types are only ever appended.
    """

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    SEARCH = "search"
    """A search: names no item (``item_id`` is None), carries ``query``."""

    @property
    def names_item(self) -> bool:
        """True for the item interactions (every type but :attr:`SEARCH`)."""
        return self is not EventType.SEARCH


MAX_QUERY_CHARS: Final = 512
"""Longest search query accepted (Unicode code points), the schema's bound; a longer one is
dead-lettered as ``oversized_query``."""


# ---------------------------------------------------------------------------------------------
# Schema files


_validate_event = compile_schema("event")
_RFC3339 = re.compile(RFC3339_PATTERN)


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded, validated event. ``event_type`` is an :class:`EventType` (a ``str``);
    ``properties`` is read-only (a mapping proxy over the decoded JSON object). ``item_id``
    is None for a search and only then; a search's text is :attr:`query`."""

    event_id: str
    event_type: EventType
    user_id: str
    item_id: str | None
    timestamp_ms: int  # event time, ms since the epoch, UTC
    session_id: str | None = None
    properties: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def query(self) -> str | None:
        """What a search searched for (``properties.query``); None for every other type,
        whose ``properties.query`` (the search that led to them), if any, stays in
        ``properties``.

        >>> Event("e1", EventType.SEARCH, "u1", None, 0, properties={"query": "red shoes"}).query
        'red shoes'
        """
        if self.event_type != EventType.SEARCH or self.properties is None:
            return None
        query = self.properties.get("query")
        return query if isinstance(query, str) else None

    def to_json_dict(self) -> dict[str, Any]:
        """The canonical JSON form: integer ``timestamp`` in ms, absent optionals omitted.

        ``decode_event(orjson.dumps(e.to_json_dict()), ...)`` gives back ``e``.
        """
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "event_id": self.event_id,
            "event_type": str(self.event_type),
            "user_id": self.user_id,
        }
        if self.item_id is not None:
            out["item_id"] = self.item_id
        out["timestamp"] = self.timestamp_ms
        if self.session_id is not None:
            out["session_id"] = self.session_id
        if self.properties is not None:
            out["properties"] = dict(self.properties)
        return out


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record could not be decoded. ``detail`` is for people and may change; match on
    ``reason``. ``event_id`` is set when one could be read and is a valid id."""

    reason: RejectReason
    detail: str
    event_id: str | None = None


def default_topic_event_types() -> Mapping[str, frozenset[EventType]]:
    """The default routing: which event types each input topic may carry."""
    return MappingProxyType(
        {
            "views": frozenset({EventType.VIEW}),
            "clicks": frozenset({EventType.CLICK, EventType.ADD_TO_CART}),
            "purchases": frozenset({EventType.PURCHASE}),
            "searches": frozenset({EventType.SEARCH}),
        }
    )


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Rules beyond the schema, normally filled from the settings object.

    The future bound is tight on purpose: an event dated ahead of the clock becomes the user's
    newest event, and every real event after it would count as late until the clock catches up.
    The past bound catches producers sending seconds instead of milliseconds, or zeros.
    """

    max_payload_bytes: int = 65_536
    """Largest record value accepted (bytes); larger ones are ``oversized_payload``."""
    max_future_skew_s: float = 300.0
    """How far ahead of ``now`` an event time may be (producer clock skew)."""
    max_past_age_s: float = 365 * 86_400.0
    """How far behind ``now`` an event time may be (late delivery, replays)."""
    topic_event_types: Mapping[str, Collection[str]] = field(
        default_factory=default_topic_event_types, hash=False
    )
    """Event types each topic may carry; a topic not in the map accepts every type. Stored as a
    read-only map of ``frozenset[EventType]``."""
    future_ms: int = field(init=False, repr=False, compare=False)
    past_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.max_payload_bytes) is not int or self.max_payload_bytes <= 0:
            raise InvalidLimitsError(
                f"DecodeLimits.max_payload_bytes must be an int > 0: {self.max_payload_bytes!r}"
            )
        for name in ("max_future_skew_s", "max_past_age_s"):
            value = getattr(self, name)
            if not (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value > 0
            ):
                raise InvalidLimitsError(
                    f"DecodeLimits.{name} must be a finite number > 0: {value!r}"
                )
        object.__setattr__(self, "future_ms", int(self.max_future_skew_s * 1000))
        object.__setattr__(self, "past_ms", int(self.max_past_age_s * 1000))
        routes: dict[str, frozenset[EventType]] = {}
        for topic, types in self.topic_event_types.items():
            try:
                routes[topic] = frozenset(EventType(t) for t in types)
            except ValueError as exc:
                raise InvalidLimitsError(
                    f"DecodeLimits.topic_event_types[{topic!r}] names an unknown event type: {exc}"
                ) from exc
        object.__setattr__(self, "topic_event_types", MappingProxyType(routes))


DEFAULT_LIMITS: Final = DecodeLimits()

_EVENT_TYPES: Final[Mapping[str, EventType]] = {t.value: t for t in EventType}
_ID_FIELDS: Final = frozenset({"event_id", "user_id", "item_id", "session_id", "order_id"})
_REQUIRED: Final = tuple(load_schema("event")["required"])  # of every type; see _missing_fields
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_SchemaError = fastjsonschema.JsonSchemaValueException


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def decode_event(
    raw: bytes | None,
    topic: str,
    limits: DecodeLimits = DEFAULT_LIMITS,
    now_ms: int | None = None,
) -> Event | Rejection:
    """Decode and validate one record value read from ``topic``. Never raises on input data.

    ``now_ms`` is the reference for the timestamp bounds (default: the wall clock); pass it in
    tests, and once per batch in the stream (see :func:`decode_events`).
    """
    if not raw:
        return Rejection(RejectReason.EMPTY_PAYLOAD, "record value is absent or empty")
    size = len(raw)
    if size > limits.max_payload_bytes:
        return Rejection(
            RejectReason.OVERSIZED_PAYLOAD,
            f"value is {size} bytes, the limit is {limits.max_payload_bytes}",
        )
    try:
        data = _loads(raw)
    except _JSONDecodeError as exc:
        return _undecodable(raw, exc)
    if not (FAST_PATH_ENABLED and _fast_event_ok(data)):
        try:
            _validate_event(data)
        except _SchemaError as exc:
            return _schema_rejection(data, exc)

    event_type = _EVENT_TYPES[data["event_type"]]
    allowed = limits.topic_event_types.get(topic)
    if allowed is not None and event_type not in allowed:
        return Rejection(
            RejectReason.WRONG_TOPIC,
            f"a {event_type} event does not belong on topic {topic!r} "
            f"(it carries {', '.join(sorted(allowed))})",
            data["event_id"],
        )
    ts = data["timestamp"]
    if type(ts) is str:
        try:  # the schema has checked the pattern: only the calendar is left to check
            parsed = datetime.fromisoformat(ts.upper())
        except ValueError as exc:
            return Rejection(
                RejectReason.INVALID_TIMESTAMP,
                f"timestamp {short(ts)} is not a real date-time: {exc}",
                data["event_id"],
            )
        delta = parsed - EPOCH
        ts_ms = delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    else:
        ts_ms = int(ts)  # an int, or a float with an integral value (JSON Schema "integer")
    if now_ms is None:
        now_ms = _now_ms()
    if ts_ms < 0 or not now_ms - limits.past_ms <= ts_ms <= now_ms + limits.future_ms:
        return Rejection(
            RejectReason.TIMESTAMP_OUT_OF_RANGE,
            _out_of_range_detail(ts_ms, now_ms, limits),
            data["event_id"],
        )
    properties = data.get("properties")
    return Event(
        data["event_id"],
        event_type,
        data["user_id"],
        data.get("item_id"),
        ts_ms,
        data.get("session_id"),
        None if properties is None else MappingProxyType(properties),
    )


def decode_events(
    raws: Iterable[bytes | None],
    topic: str,
    limits: DecodeLimits = DEFAULT_LIMITS,
    now_ms: int | None = None,
) -> list[Event | Rejection]:
    """:func:`decode_event` over a batch from one topic, with one clock reading for all."""
    now = _now_ms() if now_ms is None else now_ms
    return [decode_event(raw, topic, limits, now) for raw in raws]


_QUERY_TEXT: Final = re.compile(
    load_schema("event")["then"]["properties"]["properties"]["properties"]["query"]["pattern"])
_PROPERTY_CHECKS: Final[Mapping[str, Callable[[Any], bool]]] = {
    "price": lambda v: (type(v) is int or type(v) is float) and v >= 0,
    "quantity": lambda v: type(v) is int and v >= 1,
    "order_id": lambda v: type(v) is str and ID_PATTERN.fullmatch(v) is not None,
    "category": lambda v: type(v) is str and len(v) <= 256,
    "query": lambda v: type(v) is str and len(v) <= 1024,
}


def _fast_event_ok(d: Any) -> bool:
    """True only if ``d`` certainly satisfies event.schema.json; checks the common shapes in
    about a third of the compiled validator's time. False means "ask the compiled schema"
    (which then accepts, or names the precise reason), never "invalid". Written against the
    schema whose fingerprint is ``_FAST_PATH_SCHEMA_SHA256``; disabled for any other."""
    if type(d) is not dict:
        return False
    event_id = d.get("event_id")
    user_id = d.get("user_id")
    event_type = d.get("event_type")
    session_id = d.get("session_id")
    if (
        type(event_id) is not str
        or type(user_id) is not str
        or type(event_type) is not str
        or event_type not in _EVENT_TYPES
        or not 0 < len(event_id) <= 256
        or not 0 < len(user_id) <= 256
    ):
        return False
    properties = d.get("properties")
    if event_type == "search":  # the schema's "then": no item_id, a non-blank query
        if "item_id" in d or type(properties) is not dict:
            return False
        query = properties.get("query")
        if (
            type(query) is not str
            or not 0 < len(query) <= MAX_QUERY_CHARS
            or _QUERY_TEXT.search(query) is None
        ):
            return False
        ids = event_id + user_id
    else:  # the schema's "else": item_id required
        item_id = d.get("item_id")
        if type(item_id) is not str or not 0 < len(item_id) <= 256:
            return False
        ids = event_id + user_id + item_id
    if session_id is not None:
        if type(session_id) is not str or not 0 < len(session_id) <= 256:
            return False
        ids += session_id
    if CONTROL_CHAR.search(ids) is not None:
        return False
    ts = d.get("timestamp")
    if type(ts) is str:
        if len(ts) > 64 or _RFC3339.match(ts) is None:
            return False
    elif type(ts) is not int or ts < 0:
        return False
    if "schema_version" in d and d["schema_version"] != SCHEMA_VERSION:
        return False
    if properties is not None:
        if type(properties) is not dict:
            return False
        for key, value in properties.items():
            check = _PROPERTY_CHECKS.get(key)
            if check is not None and not check(value):
                return False
    return True


_FAST_PATH_SCHEMA_SHA256: Final = (
    "585e806e556c175f49457e9f1dc21ed40d39488854cbce99a343f81dbcdae0f9"
)
FAST_PATH_ENABLED: Final = schema_fingerprint(load_schema("event")) == _FAST_PATH_SCHEMA_SHA256
"""False when event.schema.json has changed since ``_fast_event_ok`` was written against it:
decoding stays exact (every event goes through the compiled schema), only slower. Review the
fast path against the new schema, then update ``_FAST_PATH_SCHEMA_SHA256``."""
if not FAST_PATH_ENABLED:
    logging.getLogger(__name__).warning(
        "event.schema.json differs from the one the decoder's fast path was written for; "
        "using the compiled schema for every event (correct, slower)"
    )


def _undecodable(raw: bytes, exc: ValueError) -> Rejection:
    if not bytes(raw).strip():
        return Rejection(RejectReason.EMPTY_PAYLOAD, "record value is only whitespace")
    try:
        bytes(raw).decode("utf-8")
    except UnicodeDecodeError as uexc:
        return Rejection(RejectReason.NOT_UTF8, f"value is not UTF-8: {uexc}")
    return Rejection(RejectReason.INVALID_JSON, f"value is not JSON: {exc}")


def _schema_rejection(data: Any, exc: fastjsonschema.JsonSchemaValueException) -> Rejection:
    """Map the first schema error fastjsonschema found to the most specific reason."""
    path = exc.path[1:]  # drop the leading "data"
    rule = exc.rule
    value = exc.value
    where = field_name(exc)
    if not isinstance(data, dict):
        return Rejection(
            RejectReason.NOT_AN_OBJECT, f"top level is a JSON {_json_type(data)}, not an object"
        )
    event_id = _readable_event_id(data)
    is_search = data.get("event_type") == EventType.SEARCH.value
    if rule == "not" or (is_search and path and path[0] == "item_id"):
        return Rejection(
            RejectReason.SCHEMA_VIOLATION,
            "a search names no item: item_id must be absent on a search event",
            event_id,
        )
    if rule == "required" or (
        # null is the same as absent: a search whose properties or query is null has no query
        is_search and value is None and path in (["properties"], ["properties", "query"])
    ):
        return Rejection(
            RejectReason.MISSING_FIELD,
            f"missing required field(s): {', '.join(_missing_fields(data))}",
            event_id,
        )
    if path == ["properties", "query"] and isinstance(value, str):
        if rule == "maxLength":
            limit = MAX_QUERY_CHARS if is_search else exc.rule_definition
            return Rejection(
                RejectReason.OVERSIZED_QUERY,
                f"properties.query is {len(value)} characters, the limit is {limit}",
                event_id,
            )
        if rule in ("minLength", "pattern"):
            return Rejection(
                RejectReason.SCHEMA_VIOLATION,
                f"a search's properties.query must hold a character other than whitespace, "
                f"got {short(value)}",
                event_id,
            )
    if rule == "type" or (where == "event_type" and not isinstance(value, str)):
        expected = exc.rule_definition if rule == "type" else "string"
        if isinstance(expected, list):
            expected = " or ".join(expected)
        return Rejection(
            RejectReason.WRONG_TYPE,
            f"{where} must be {expected}, got {_json_type(value)} {short(value)}",
            event_id,
        )
    if where == "event_type":
        return Rejection(
            RejectReason.UNKNOWN_EVENT_TYPE,
            f"event_type {short(value)} is not one of {', '.join(_EVENT_TYPES)}",
            event_id,
        )
    if path and path[-1] in _ID_FIELDS and rule in ("minLength", "maxLength", "pattern"):
        return Rejection(
            RejectReason.INVALID_ID,
            f"{where} must be 1-256 characters without control characters, got "
            f"{len(value)} characters: {short(value)}",
            event_id,
        )
    if where == "timestamp":
        if rule == "minimum":
            return Rejection(
                RejectReason.TIMESTAMP_OUT_OF_RANGE,
                f"timestamp {short(value)} is negative (ms before 1970)",
                event_id,
            )
        return Rejection(
            RejectReason.INVALID_TIMESTAMP,
            f"timestamp {short(value)} is neither an RFC 3339 date-time with offset "
            "(e.g. 2026-11-23T18:00:00.123Z) nor integer epoch milliseconds",
            event_id,
        )
    return Rejection(
        RejectReason.SCHEMA_VIOLATION, f"{where or 'event'}: {exc.message}"[:500], event_id
    )


def _missing_fields(data: dict[str, Any]) -> list[str]:
    """Every field the schema requires of ``data`` that it lacks (the validator names only
    the first rule broken): the common ones, item_id unless it is a search, and a search's
    query (``properties`` null counts as absent)."""
    missing = [name for name in _REQUIRED if name not in data]
    if data.get("event_type") != EventType.SEARCH.value:
        if "item_id" not in data:
            missing.append("item_id")
    else:
        properties = data.get("properties")
        if not isinstance(properties, dict) or properties.get("query") is None:
            missing.append("properties.query")
    return missing


def _readable_event_id(data: dict[str, Any]) -> str | None:
    event_id = data.get("event_id")
    if type(event_id) is str and ID_PATTERN.fullmatch(event_id):
        return event_id
    return None


def _out_of_range_detail(ts_ms: int, now_ms: int, limits: DecodeLimits) -> str:
    if ts_ms < 0:
        return f"timestamp is {-ts_ms} ms before 1970-01-01T00:00:00Z"
    delta_s = (ts_ms - now_ms) / 1000
    where = "ahead of" if delta_s > 0 else "behind"
    detail = (
        f"timestamp is {abs(delta_s):.0f} s {where} now (allowed: {limits.max_future_skew_s:g} s "
        f"ahead, {limits.max_past_age_s:g} s behind)"
    )
    if abs(ts_ms * 1000 - now_ms) <= limits.past_ms:
        detail += "; it looks like seconds, the contract wants milliseconds"
    return detail


_JSON_TYPES: Final = {
    dict: "object", list: "array", str: "string", int: "integer", float: "number",
    bool: "boolean", type(None): "null",
}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)

