"""Decode events, encode recommendations and dead letters: the Python side of the contracts.

The JSON Schema files beside this module are the contract. They are read from the package
(``importlib.resources``) and compiled once, at import, with fastjsonschema. An event is
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
>>> now = parse_rfc3339_ms("2026-11-23T18:00:05Z")
>>> event = decode_event(raw, "views", DEFAULT_LIMITS, now_ms=now)
>>> event.user_id, event.event_type, event.timestamp_ms
('u-1', <EventType.VIEW: 'view'>, 1795456800123)
>>> decode_event(raw, "purchases", DEFAULT_LIMITS, now_ms=now).reason
<RejectReason.WRONG_TOPIC: 'wrong_topic'>
>>> format_rfc3339_ms(1795456800123)
'2026-11-23T18:00:00.123Z'
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from importlib import resources
from types import MappingProxyType
from typing import Any, Final, Protocol

import fastjsonschema
import orjson

from schemas.errors import InvalidLimitsError, InvalidTimestampError, SchemaViolationError
from schemas.reasons import FallbackReason, RejectReason

__all__ = [
    "DEFAULT_LIMITS",
    "SCHEMA_VERSION",
    "DecodeLimits",
    "Event",
    "EventType",
    "Rejection",
    "TriggerRef",
    "build_recommendation",
    "decode_dead_letter",
    "decode_event",
    "decode_events",
    "default_topic_event_types",
    "encode_dead_letter",
    "encode_recommendation",
    "format_rfc3339_ms",
    "load_schema",
    "parse_rfc3339_ms",
]

SCHEMA_VERSION: Final = "1"
"""The ``schema_version`` this code reads and writes."""


class EventType(StrEnum):
    """The four interactions an event can record (the event schema's ``event_type`` enum)."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"


# ---------------------------------------------------------------------------------------------
# Schema files


def load_schema(name: str) -> dict[str, Any]:
    """A fresh parsed copy of ``schemas/<name>.schema.json`` (``event``, ``recommendation``,
    ``dead_letter``), read from the installed package."""
    data = resources.files("schemas").joinpath(f"{name}.schema.json").read_bytes()
    schema: dict[str, Any] = orjson.loads(data)
    return schema


def _compile(name: str) -> Any:
    # use_default=False: validation must never write into the message it checks.
    return fastjsonschema.compile(load_schema(name), use_default=False)


_validate_event = _compile("event")
_validate_recommendation = _compile("recommendation")
_validate_dead_letter = _compile("dead_letter")


# ---------------------------------------------------------------------------------------------
# RFC 3339

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
# Same pattern as the event schema's timestamp string (a test checks they are equal).
RFC3339_PATTERN: Final = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]"
    r":[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])(?![\s\S])"
)
_RFC3339 = re.compile(RFC3339_PATTERN)
_MIN_MS: Final = -62_135_596_800_000  # 0001-01-01T00:00:00.000Z
_MAX_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def parse_rfc3339_ms(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 date-time with offset (sub-ms digits are
    dropped, rounding toward the past).

    >>> parse_rfc3339_ms("1970-01-01T01:00:00.0019+01:00")
    1

    Raises :class:`~schemas.errors.InvalidTimestampError` for anything else: no offset, a
    day that does not exist, a leap second, a year outside 1-9999.
    """
    if len(text) > 64 or _RFC3339.match(text) is None:
        raise InvalidTimestampError(f"not an RFC 3339 date-time with offset: {_short(text)}")
    try:
        parsed = datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise InvalidTimestampError(f"{_short(text)} is not a real date-time: {exc}") from exc
    return (parsed - _EPOCH) // _ONE_MS


def format_rfc3339_ms(ms: int) -> str:
    """``2026-11-23T18:00:00.123Z`` for epoch milliseconds (always UTC, three digits).

    Raises :class:`~schemas.errors.InvalidTimestampError` outside years 1-9999.
    """
    if not _MIN_MS <= ms <= _MAX_MS:
        raise InvalidTimestampError(f"{ms} ms is outside years 1-9999")
    t = _EPOCH + timedelta(milliseconds=ms)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond // 1000:03d}Z"
    )


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded, validated event. ``event_type`` is an :class:`EventType` (a ``str``);
    ``properties`` is read-only (a mapping proxy over the decoded JSON object)."""

    event_id: str
    event_type: EventType
    user_id: str
    item_id: str
    timestamp_ms: int  # event time, ms since the epoch, UTC
    session_id: str | None = None
    properties: Mapping[str, Any] | None = field(default=None, hash=False)

    def to_json_dict(self) -> dict[str, Any]:
        """The canonical JSON form: integer ``timestamp`` in ms, absent optionals omitted.

        ``decode_event(orjson.dumps(e.to_json_dict()), ...)`` gives back ``e``.
        """
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "event_id": self.event_id,
            "event_type": str(self.event_type),
            "user_id": self.user_id,
            "item_id": self.item_id,
            "timestamp": self.timestamp_ms,
        }
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
    """Event types each topic may carry; a topic not in the map accepts all four. Stored as a
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
_ID_OK = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,256}")
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
                f"timestamp {_short(ts)} is not a real date-time: {exc}",
                data["event_id"],
            )
        delta = parsed - _EPOCH
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
        data["item_id"],
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


_CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PROPERTY_CHECKS: Final[Mapping[str, Callable[[Any], bool]]] = {
    "price": lambda v: (type(v) is int or type(v) is float) and v >= 0,
    "quantity": lambda v: type(v) is int and v >= 1,
    "order_id": lambda v: type(v) is str and _ID_OK.fullmatch(v) is not None,
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
    item_id = d.get("item_id")
    event_type = d.get("event_type")
    session_id = d.get("session_id")
    if (
        type(event_id) is not str
        or type(user_id) is not str
        or type(item_id) is not str
        or type(event_type) is not str
        or event_type not in _EVENT_TYPES
        or not 0 < len(event_id) <= 256
        or not 0 < len(user_id) <= 256
        or not 0 < len(item_id) <= 256
    ):
        return False
    if session_id is None:
        ids = event_id + user_id + item_id
    elif type(session_id) is str and 0 < len(session_id) <= 256:
        ids = event_id + user_id + item_id + session_id
    else:
        return False
    if _CONTROL_CHAR.search(ids) is not None:
        return False
    ts = d.get("timestamp")
    if type(ts) is str:
        if len(ts) > 64 or _RFC3339.match(ts) is None:
            return False
    elif type(ts) is not int or ts < 0:
        return False
    if "schema_version" in d and d["schema_version"] != SCHEMA_VERSION:
        return False
    properties = d.get("properties")
    if properties is not None:
        if type(properties) is not dict:
            return False
        for key, value in properties.items():
            check = _PROPERTY_CHECKS.get(key)
            if check is not None and not check(value):
                return False
    return True


def _schema_fingerprint(schema: Any) -> str:
    """sha256 of a schema's validation keywords (annotations like description left out)."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in _ANNOTATIONS}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    canonical = orjson.dumps(strip(schema), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


_ANNOTATIONS: Final = frozenset({"description", "title", "$comment", "examples"})
_FAST_PATH_SCHEMA_SHA256: Final = (
    "1e24bf9325b52737d0f7a75874fe625e96617ad40b1f925398ff8f675306d483"
)
FAST_PATH_ENABLED: Final = _schema_fingerprint(load_schema("event")) == _FAST_PATH_SCHEMA_SHA256
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
    field_name = _field_name(exc)
    if not isinstance(data, dict):
        return Rejection(
            RejectReason.NOT_AN_OBJECT, f"top level is a JSON {_json_type(data)}, not an object"
        )
    event_id = _readable_event_id(data)
    if rule == "required":
        missing = sorted(set(exc.rule_definition) - data.keys())
        return Rejection(
            RejectReason.MISSING_FIELD, f"missing required field(s): {', '.join(missing)}", event_id
        )
    if rule == "type" or (field_name == "event_type" and not isinstance(value, str)):
        expected = exc.rule_definition if rule == "type" else "string"
        if isinstance(expected, list):
            expected = " or ".join(expected)
        return Rejection(
            RejectReason.WRONG_TYPE,
            f"{field_name} must be {expected}, got {_json_type(value)} {_short(value)}",
            event_id,
        )
    if field_name == "event_type":
        return Rejection(
            RejectReason.UNKNOWN_EVENT_TYPE,
            f"event_type {_short(value)} is not one of {', '.join(_EVENT_TYPES)}",
            event_id,
        )
    if path and path[-1] in _ID_FIELDS and rule in ("minLength", "maxLength", "pattern"):
        return Rejection(
            RejectReason.INVALID_ID,
            f"{field_name} must be 1-256 characters without control characters, got "
            f"{len(value)} characters: {_short(value)}",
            event_id,
        )
    if field_name == "timestamp":
        if rule == "minimum":
            return Rejection(
                RejectReason.TIMESTAMP_OUT_OF_RANGE,
                f"timestamp {_short(value)} is negative (ms before 1970)",
                event_id,
            )
        return Rejection(
            RejectReason.INVALID_TIMESTAMP,
            f"timestamp {_short(value)} is neither an RFC 3339 date-time with offset "
            "(e.g. 2026-11-23T18:00:00.123Z) nor integer epoch milliseconds",
            event_id,
        )
    return Rejection(
        RejectReason.SCHEMA_VIOLATION, f"{field_name or 'event'}: {exc.message}"[:500], event_id
    )


def _field_name(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """``items[3].score`` for fastjsonschema's ``data.items[3].score``; "" for the top level."""
    name = exc.name or "data"
    return name[5:] if name.startswith("data.") else ""


def _readable_event_id(data: dict[str, Any]) -> str | None:
    event_id = data.get("event_id")
    if type(event_id) is str and _ID_OK.fullmatch(event_id):
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


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Recommendations


class TriggerRef(Protocol):
    """Anything naming an event by id, type and time, e.g. ``UserState.newest_event``."""

    @property
    def event_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def event_time_ms(self) -> int: ...


def build_recommendation(
    user_id: str,
    items: Sequence[tuple[str, float]],
    model_name: str,
    model_version: str,
    trigger: Event | TriggerRef,
    generated_at_ms: int,
    fallback: FallbackReason | str | None,
) -> dict[str, Any]:
    """A recommendation message (not yet validated: :func:`encode_recommendation` does that).

    ``items`` are ``(item_id, score)`` in rank order, best first; ``trigger`` is the user's
    newest event by event time (an :class:`Event` or a :class:`TriggerRef`); ``fallback`` is
    ``None`` when the model ranked the items.
    """
    trigger_ms = trigger.timestamp_ms if isinstance(trigger, Event) else trigger.event_time_ms
    return {
        "schema_version": SCHEMA_VERSION,
        "user_id": user_id,
        "items": [{"item_id": item_id, "score": float(score)} for item_id, score in items],
        "model": {"name": model_name, "version": model_version},
        "trigger": {
            "event_id": trigger.event_id,
            "event_type": str(trigger.event_type),
            "event_time": format_rfc3339_ms(trigger_ms),
        },
        "generated_at": format_rfc3339_ms(generated_at_ms),
        "fallback": None if fallback is None else str(fallback),
    }


_UTC_TIME = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"\.[0-9]{3}Z"
)
_RECOMMENDATION_KEYS: Final = frozenset(
    {"schema_version", "user_id", "items", "model", "trigger", "generated_at", "fallback"}
)
_ITEM_KEYS: Final = frozenset({"item_id", "score"})
_MODEL_KEYS: Final = frozenset({"name", "version"})
_TRIGGER_KEYS: Final = frozenset({"event_id", "event_type", "event_time"})
_FALLBACKS: Final = frozenset({None, *(r.value for r in FallbackReason)})


def _fast_recommendation_ok(d: Any) -> bool:
    """True only if ``d`` certainly satisfies recommendation.schema.json; the shape
    :func:`build_recommendation` makes, checked in about a tenth of the compiled validator's
    time (the emission hot path). False means "ask the compiled schema", never "invalid".
    Written against the schema whose fingerprint is ``_RECOMMENDATION_FAST_PATH_SHA256``."""
    if type(d) is not dict or d.keys() != _RECOMMENDATION_KEYS:
        return False
    user_id, items, model, trigger = d["user_id"], d["items"], d["model"], d["trigger"]
    if (
        d["schema_version"] != SCHEMA_VERSION
        or type(user_id) is not str
        or not 0 < len(user_id) <= 256
        or type(items) is not list
        or len(items) > 1000
        or type(model) is not dict
        or model.keys() != _MODEL_KEYS
        or type(trigger) is not dict
        or trigger.keys() != _TRIGGER_KEYS
        or type(d["generated_at"]) is not str
        or _UTC_TIME.fullmatch(d["generated_at"]) is None
        or (d["fallback"] is not None and type(d["fallback"]) is not str)
        or d["fallback"] not in _FALLBACKS
    ):
        return False
    name, version = model["name"], model["version"]
    event_id, event_type, event_time = (
        trigger["event_id"], trigger["event_type"], trigger["event_time"])
    if (
        type(name) is not str
        or type(version) is not str
        or not 0 < len(name) <= 128
        or not 0 < len(version) <= 128
        or type(event_id) is not str
        or not 0 < len(event_id) <= 256
        or type(event_type) is not str
        or event_type not in _EVENT_TYPES
        or type(event_time) is not str
        or _UTC_TIME.fullmatch(event_time) is None
    ):
        return False
    texts = [user_id, name, version, event_id]
    for item in items:
        if type(item) is not dict or item.keys() != _ITEM_KEYS:
            return False
        item_id, score = item["item_id"], item["score"]
        if (type(item_id) is not str or not 0 < len(item_id) <= 256
                or (type(score) is not float and type(score) is not int)):
            return False
        texts.append(item_id)
    return _CONTROL_CHAR.search("".join(texts)) is None


_RECOMMENDATION_FAST_PATH_SHA256: Final = (
    "1f03457adbc514c93580541ff69ef8e988d47f9a4247731b1b62d09d8c28083b"
)
RECOMMENDATION_FAST_PATH_ENABLED: Final = (
    _schema_fingerprint(load_schema("recommendation")) == _RECOMMENDATION_FAST_PATH_SHA256
)
"""False when recommendation.schema.json has changed since ``_fast_recommendation_ok`` was
written against it: every message then goes through the compiled schema (correct, slower)."""


def encode_recommendation(message: Mapping[str, Any]) -> bytes:
    """Validate ``message`` against recommendation.schema.json and serialise it (UTF-8 JSON).

    Beyond the schema: scores must be finite and item ids unique. Raises
    :class:`~schemas.errors.SchemaViolationError` otherwise.
    """
    data = message if isinstance(message, dict) else dict(message)
    if not (RECOMMENDATION_FAST_PATH_ENABLED and _fast_recommendation_ok(data)):
        _check("recommendation", _validate_recommendation, data)
    seen: set[str] = set()
    for index, item in enumerate(data["items"]):
        if not math.isfinite(item["score"]):
            raise SchemaViolationError(
                f"items[{index}].score is {item['score']}; scores must be finite",
                schema="recommendation", path=f"items[{index}].score", rule="finite",
            )
        if item["item_id"] in seen:
            raise SchemaViolationError(
                f"items[{index}].item_id {item['item_id']!r} appears twice",
                schema="recommendation", path=f"items[{index}].item_id", rule="unique",
            )
        seen.add(item["item_id"])
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError as exc:  # e.g. a float subclass the schema let through
        raise SchemaViolationError(
            f"recommendation is not serialisable as JSON: {exc}", schema="recommendation"
        ) from exc


# ---------------------------------------------------------------------------------------------
# Dead letters

DEFAULT_MAX_ORIGINAL_BYTES: Final = 512 * 1024
"""Original key/value bytes kept in a dead letter; keeps it under Kafka's default 1 MiB."""


def encode_dead_letter(
    rejection: Rejection,
    *,
    raw_key: bytes | None,
    raw_value: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    received_at_ms: int,
    max_original_bytes: int = DEFAULT_MAX_ORIGINAL_BYTES,
) -> bytes:
    """A dead-letter message (UTF-8 JSON, validated) for a record that was rejected.

    For a failure after decoding, pass ``Rejection(RejectReason.PROCESSING_ERROR, detail,
    event.event_id)``. Key and value longer than ``max_original_bytes`` are cut to that many
    bytes and ``truncated`` is set. A negative ``timestamp_ms`` (Kafka's -1, "no timestamp")
    is written as null; ``detail`` is cut to 1024 characters. Raises
    :class:`~schemas.errors.SchemaViolationError` if the result would still break
    dead_letter.schema.json (e.g. a negative offset).
    """
    key_b64, key_cut = _b64(raw_key, max_original_bytes)
    value_b64, value_cut = _b64(raw_value, max_original_bytes)
    event_id = rejection.event_id
    message = {
        "schema_version": SCHEMA_VERSION,
        "reason": str(rejection.reason),
        # "replace": a detail quoting an exception may hold lone surrogates JSON cannot carry.
        "detail": rejection.detail[:1024].encode("utf-8", "replace").decode("utf-8"),
        "source": {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp_ms": None if timestamp_ms is None or timestamp_ms < 0 else timestamp_ms,
        },
        "original_key_b64": key_b64,
        "original_value_b64": value_b64,
        "original_key_size": None if raw_key is None else len(raw_key),
        "original_value_size": None if raw_value is None else len(raw_value),
        "truncated": key_cut or value_cut,
        "event_id": event_id if event_id is not None and _ID_OK.fullmatch(event_id) else None,
        "received_at": format_rfc3339_ms(received_at_ms),
    }
    _check("dead_letter", _validate_dead_letter, message)
    return orjson.dumps(message)


def decode_dead_letter(raw: bytes) -> dict[str, Any]:
    """Parse and validate a dead-letter message. The originals are
    ``base64.b64decode(message["original_value_b64"])`` (when not null).

    Raises :class:`~schemas.errors.SchemaViolationError` if ``raw`` is not one.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SchemaViolationError(
            f"dead letter is not JSON: {exc}", schema="dead_letter", rule="json"
        ) from exc
    _check("dead_letter", _validate_dead_letter, data)
    message: dict[str, Any] = data
    return message


def _b64(raw: bytes | None, cap: int) -> tuple[str | None, bool]:
    if raw is None:
        return None, False
    kept = bytes(raw[:cap])
    return base64.b64encode(kept).decode("ascii"), len(kept) < len(raw)


def _check(schema: str, validate: Any, data: Any) -> None:
    try:
        validate(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        path = _field_name(exc)
        raise SchemaViolationError(
            f"{schema} message breaks {schema}.schema.json at {path or 'top level'}: "
            f"{exc.message}"[:1000],
            schema=schema, path=path, rule=exc.rule or "",
        ) from exc
