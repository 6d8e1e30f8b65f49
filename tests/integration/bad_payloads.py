"""Hypothesis strategies for input records: valid events, and bad ones of every reason.

Every bad record is a valid event with exactly one thing wrong (or a record that is not an
event at all), so the reason the worker must give follows from how it was built, not from
asking the decoder. The only rule applied on top is the documented check order: a value
over ``max_payload_bytes`` is ``oversized_payload`` whatever else is wrong with it.

About one event in five is a search: no ``item_id``, a ``properties.query`` of 1-512
characters with one not whitespace. Bad searches lack the query (``missing_field``), carry a
query over 512 characters (``oversized_query``), or name an item or hold a blank query
(``schema_violation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import strategies as st

from schemas.reasons import RejectReason

TOPIC_TYPES = {
    "views": ("view",),
    "clicks": ("click", "add_to_cart"),
    "purchases": ("purchase",),
    "searches": ("search",),
}
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase", "search")
ITEM_TYPES = EVENT_TYPES[:4]
TYPE_MIX = st.sampled_from(("view", "view", "click", "add_to_cart", "purchase", "search"))
MAX_QUERY = 512
HOME = {t: topic for topic, types in TOPIC_TYPES.items() for t in types}
DAY_MS = 86_400_000
ERASURE = "user_erasure"

INGEST_REASONS = frozenset(RejectReason) - {
    RejectReason.PROCESSING_ERROR, RejectReason.KEY_MISMATCH}
"""The reasons the event ingest gives (processing_error is a failure after decoding;
key_mismatch belongs to catalogue records, see tests/integration/test_catalog.py)."""


@dataclass(frozen=True)
class Case:
    """One record to send: ``topic`` is a suffix (views, clicks, purchases, searches,
    user_erasure);
    ``reason`` is None for a valid event."""

    topic: str
    key: bytes | None
    value: bytes | None
    reason: str | None
    user: str | None = None
    event_type: str | None = None


def _text(min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    """Printable text without control characters or surrogates (valid in an id)."""
    return st.text(
        st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0x2FFF),
        min_size=min_size, max_size=max_size,
    )


INTS = st.integers(-(2**53), 2**53)  # orjson writes 64-bit integers only
KEYS = st.one_of(st.none(), st.binary(min_size=1, max_size=16))
SAFE_ID = st.text("ABCXYZabcxyz0189_.:-", min_size=1, max_size=24)
CONTROL_CHARS = st.sampled_from([chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))])
# Valid queries: any text (controls and non-ASCII spaces included) with one character that is
# not ASCII whitespace, up to the 512-character bound.
QUERIES = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).filter(
        lambda q: q.strip(" \t\n\r\v\f") != ""),
    st.sampled_from(["red running shoes", "  padded  ", "\u3000x", "q" * MAX_QUERY,
                     "Schuhe für Damen", "无线耳机"]),
)
BLANK_QUERIES = st.sampled_from(["", " ", "\t", " \n\r ", "\x0b\x0c"])


def rfc3339(ms: int, offset_minutes: int) -> str:
    """``ms`` as an RFC 3339 string with the given UTC offset (independent of the codec)."""
    zone = timezone(timedelta(minutes=offset_minutes))
    text = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(zone).isoformat(
        timespec="milliseconds")
    return text.replace("+00:00", "Z") if offset_minutes == 0 else text


@st.composite
def valid_event(draw: st.DrawFn, now_ms: int, users: list[str]) -> dict[str, Any]:
    """A valid event of the last hour (event_id is set by the caller, unique)."""
    event_type = draw(TYPE_MIX)
    ts_ms = now_ms - draw(st.integers(0, 3_600_000))
    timestamp: int | str = ts_ms
    if draw(st.booleans()):
        timestamp = rfc3339(ts_ms, draw(st.sampled_from([0, 60, 330, -300, -600, 840])))
    event: dict[str, Any] = {
        "event_id": "set-by-caller",
        "event_type": event_type,
        "user_id": draw(st.sampled_from(users)),
        "item_id": draw(st.one_of(SAFE_ID, _text(1, 40))),
        "timestamp": timestamp,
    }
    if draw(st.booleans()):
        event["session_id"] = draw(st.one_of(st.none(), SAFE_ID))
    if event_type == "search":
        del event["item_id"]
        event["properties"] = draw(st.fixed_dictionaries(
            {"query": QUERIES}, optional={"category": _text(0, 30), "extra": _text(0, 10)}))
    elif draw(st.booleans()):
        event["properties"] = draw(st.one_of(st.none(), st.fixed_dictionaries(
            {}, optional={"price": st.floats(0, 1e6), "quantity": st.integers(1, 99),
                          "category": _text(0, 30), "extra": _text(0, 10),
                          "query": QUERIES})))
    if draw(st.booleans()):
        event["schema_version"] = "1"
    if draw(st.booleans()):
        event["some_future_field"] = draw(st.one_of(INTS, _text()))
    return event


def _bad_base(draw: st.DrawFn, now_ms: int, event_type: str | None = None
              ) -> tuple[str, dict[str, Any]]:
    """A valid event (safe ids; a search has a safe query) and its home topic, for a single
    corruption."""
    if event_type is None:
        event_type = draw(TYPE_MIX)
    event: dict[str, Any] = {
        "event_id": draw(SAFE_ID), "event_type": event_type, "user_id": draw(SAFE_ID),
        "item_id": draw(SAFE_ID), "timestamp": now_ms - draw(st.integers(0, 600_000)),
    }
    if event_type == "search":
        del event["item_id"]
        event["properties"] = {"query": draw(SAFE_ID)}
    if draw(st.booleans()):
        event["session_id"] = draw(SAFE_ID)
    return HOME[event_type], event


def _set_property(event: dict[str, Any], name: str, value: Any) -> None:
    """Set one key of ``properties``, keeping the others (a search keeps its query)."""
    event["properties"] = {**(event.get("properties") or {}), name: value}


def _json_scalar_or_array() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), INTS,
        st.floats(allow_nan=False, allow_infinity=False), _text(0, 20),
    )
    return st.one_of(scalars, st.lists(scalars, max_size=5))


@st.composite
def bad_case(draw: st.DrawFn, now_ms: int, max_payload: int) -> Case:
    """One bad record; every reason the ingest path can give is reachable."""
    reason = draw(st.sampled_from(sorted(INGEST_REASONS)))
    topic, event = _bad_base(draw, now_ms)
    key = draw(KEYS)
    value: bytes | None
    if reason == RejectReason.EMPTY_PAYLOAD:
        value = draw(st.sampled_from([None, b"", b" ", b"\n", b"\t \r\n "]))
    elif reason == RejectReason.OVERSIZED_PAYLOAD:
        size = draw(st.integers(max_payload + 1, max_payload * 2))
        shape = draw(st.sampled_from(["padded-event", "garbage", "wrong-topic-event"]))
        if shape == "garbage":  # not even JSON: the size is checked first
            value = b"{" * size
        else:
            if shape == "wrong-topic-event":
                topic = draw(st.sampled_from([t for t in TOPIC_TYPES if t != topic]))
            event["properties"] = {"blob": "x" * size}
            value = orjson.dumps(event)
    elif reason == RejectReason.NOT_UTF8:
        body = orjson.dumps(event)
        if draw(st.booleans()):  # inside a JSON string, before an ASCII id
            bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80",
                                        b"\xf8\x88\x80", b"\xe2\x82", b"\x80"]))
            field = b'"item_id":"' if "item_id" in event else b'"user_id":"'
            at = body.index(field) + len(field)
            value = body[:at] + bad + body[at:]
        else:  # bytes 0xfe and 0xff never occur in UTF-8, whatever surrounds them
            bad = draw(st.sampled_from([b"\xff", b"\xfe"]))
            value = draw(st.binary(max_size=20)) + bad + draw(st.binary(max_size=20))
    elif reason == RejectReason.INVALID_JSON:
        body = orjson.dumps(event)
        shape = draw(st.sampled_from(["truncated", "bom", "trailing", "python", "bare"]))
        if shape == "truncated":
            value = body[: draw(st.integers(1, len(body) - 1))]
        elif shape == "bom":
            value = b"\xef\xbb\xbf" + body
        elif shape == "trailing":
            value = body + draw(st.sampled_from([b"}", b"x", b",{}", b" ]"]))
        elif shape == "python":
            value = repr(event).encode()
        else:
            value = draw(st.sampled_from([b"{not json", b"nul", b"NaN", b"{'a': 1}",
                                          b"[1,2", b"tru", b'"unterminated']))
    elif reason == RejectReason.NOT_AN_OBJECT:
        value = orjson.dumps(draw(_json_scalar_or_array()))
    elif reason == RejectReason.MISSING_FIELD:
        required = ["event_id", "event_type", "user_id", "timestamp"]
        required.append("query" if event["event_type"] == "search" else "item_id")
        for name in draw(st.lists(st.sampled_from(required), min_size=1, unique=True)):
            if name != "query":
                del event[name]
                continue
            shape = draw(st.sampled_from(["no properties", "null properties", "no query",
                                          "null query"]))
            if shape == "no properties":
                del event["properties"]
            elif shape == "null properties":  # null is the same as absent
                event["properties"] = None
            elif shape == "no query":
                event["properties"] = draw(st.fixed_dictionaries(
                    {}, optional={"page": st.integers(1, 9), "category": _text(0, 10)}))
            else:
                event["properties"] = {"query": None}
        value = orjson.dumps(event)
    elif reason == RejectReason.WRONG_TYPE:
        names = ["event_id", "event_type", "user_id", "timestamp", "session_id", "properties",
                 "price", "quantity", "query"]
        if event["event_type"] != "search":  # any item_id on a search is schema_violation
            names.append("item_id")
        name = draw(st.sampled_from(names))
        wrong_ids = st.one_of(st.none(), INTS, st.booleans(), st.lists(INTS, max_size=2),
                              st.dictionaries(SAFE_ID, INTS, max_size=2))
        if name == "timestamp":
            event[name] = draw(st.one_of(
                st.none(), st.booleans(), st.lists(INTS, max_size=2),
                st.floats(1.0, 1e12).filter(lambda f: not f.is_integer())))
        elif name in ("session_id",):  # null is allowed there
            event[name] = draw(st.one_of(INTS, st.booleans(), st.lists(INTS, max_size=2)))
        elif name == "properties":
            event[name] = draw(st.one_of(INTS, _text(0, 8), st.booleans(),
                                         st.lists(INTS, max_size=2)))
        elif name == "price":
            _set_property(event, "price", draw(st.one_of(_text(0, 8), st.booleans())))
        elif name == "quantity":
            _set_property(event, "quantity", draw(st.one_of(
                _text(0, 8), st.floats(1.5, 99.5).filter(lambda f: not f.is_integer()))))
        elif name == "query":  # not null: a search's null query is missing_field
            _set_property(event, "query", draw(st.one_of(
                INTS, st.booleans(), st.lists(_text(1, 5), max_size=2))))
        else:
            event[name] = draw(wrong_ids)
        value = orjson.dumps(event)
    elif reason == RejectReason.UNKNOWN_EVENT_TYPE:
        event["event_type"] = draw(st.one_of(
            _text(0, 20), st.sampled_from(["View", "CLICK", "purchase ", "add-to-cart",
                                           "teleport", ""])).filter(
            lambda t: t not in EVENT_TYPES))
        value = orjson.dumps(event)
    elif reason == RejectReason.WRONG_TOPIC:
        topic = draw(st.sampled_from([t for t in TOPIC_TYPES if t != topic]))
        value = orjson.dumps(event)
    elif reason == RejectReason.INVALID_ID:
        names = ["event_id", "user_id", "session_id", "order_id"]
        if event["event_type"] != "search":  # any item_id on a search is schema_violation
            names.append("item_id")
        name = draw(st.sampled_from(names))
        shape = draw(st.sampled_from(["empty", "long", "control"]))
        if shape == "empty":
            bad_id = ""
        elif shape == "long":
            bad_id = "i" * draw(st.integers(257, 600))
        else:
            text = draw(_text(0, 10))
            at = draw(st.integers(0, len(text)))
            bad_id = text[:at] + draw(CONTROL_CHARS) + text[at:]
        if name == "order_id":
            _set_property(event, "order_id", bad_id)
        else:
            event[name] = bad_id
        value = orjson.dumps(event)
    elif reason == RejectReason.INVALID_TIMESTAMP:
        good = rfc3339(event["timestamp"], 0)
        event["timestamp"] = draw(st.one_of(
            st.just(good[:-1]),  # no offset
            st.just(good.replace("T", " ")),
            st.just(good[:10]),  # a date only
            st.sampled_from(["2026-02-30T00:00:00Z", "2025-04-31T12:00:00Z",
                             "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z",
                             "2016-12-31T23:59:60Z", "yesterday", "", "now",
                             "1767225600000"]),
            st.integers(65, 100).map(lambda n: good + "0" * n),  # longer than 64
            _text(0, 20).map(lambda t: "x" + t),
        ))
        value = orjson.dumps(event)
    elif reason == RejectReason.TIMESTAMP_OUT_OF_RANGE:
        shape = draw(st.sampled_from(["future", "past", "negative", "seconds", "string"]))
        if shape == "future":
            event["timestamp"] = now_ms + draw(st.integers(3_600_000, 100 * 365 * DAY_MS))
        elif shape == "past":
            event["timestamp"] = draw(st.integers(0, now_ms - 366 * DAY_MS))
        elif shape == "negative":
            event["timestamp"] = draw(st.integers(-(2**53), -1))
        elif shape == "seconds":
            event["timestamp"] = now_ms // 1000
        else:
            event["timestamp"] = draw(st.sampled_from(
                ["1999-12-31T23:59:59Z", "2999-01-01T00:00:00.000+01:00",
                 "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"]))
        value = orjson.dumps(event)
    elif reason == RejectReason.SCHEMA_VIOLATION:
        shape = draw(st.sampled_from(["version", "price", "quantity", "category",
                                      "search with item", "blank query"]))
        if shape in ("search with item", "blank query"):
            topic, event = _bad_base(draw, now_ms, "search")
        if shape == "version":
            event["schema_version"] = draw(st.one_of(
                st.sampled_from(["2", "1.0", "", "v1"]), st.integers(0, 5)))
        elif shape == "price":
            _set_property(event, "price", -draw(st.floats(0.01, 1e6)))
        elif shape == "quantity":
            _set_property(event, "quantity", draw(st.integers(-100, 0)))
        elif shape == "category":
            _set_property(event, "category", "c" * draw(st.integers(257, 400)))
        elif shape == "search with item":  # a search names no item, valid id or not
            event["item_id"] = draw(st.one_of(SAFE_ID, st.none(), st.just(""), INTS))
        else:
            _set_property(event, "query", draw(BLANK_QUERIES))
        value = orjson.dumps(event)
    elif reason == RejectReason.OVERSIZED_QUERY:
        if draw(st.integers(0, 3)):  # a search: over 512 characters
            topic, event = _bad_base(draw, now_ms, "search")
            length = draw(st.one_of(st.just(MAX_QUERY + 1), st.integers(MAX_QUERY + 1, 1500)))
        else:  # any other event: the query that led to it, over 1024 characters
            topic, event = _bad_base(draw, now_ms, draw(st.sampled_from(ITEM_TYPES)))
            length = draw(st.integers(1025, 1500))
        _set_property(event, "query", draw(st.sampled_from(["q", "é", "查", "q "])) * length)
        value = orjson.dumps(event)
    else:  # pragma: no cover - the sampled reasons are exhausted above
        raise AssertionError(reason)
    expected = reason
    if value is not None and len(value) > max_payload:
        expected = RejectReason.OVERSIZED_PAYLOAD
    return Case(topic, key, value, str(expected))


@st.composite
def bad_erasure(draw: st.DrawFn) -> Case:
    """A malformed erasure request (its decoder has fewer reasons than the event one)."""
    value, reason = draw(st.sampled_from([
        (b"", RejectReason.EMPTY_PAYLOAD),
        (b"{nope", RejectReason.INVALID_JSON),
        (b"[1, 2]", RejectReason.NOT_AN_OBJECT),
        (b"{}", RejectReason.MISSING_FIELD),
        (b'{"user": "x"}', RejectReason.MISSING_FIELD),
        (b'{"user_id": 42}', RejectReason.WRONG_TYPE),
        (b'{"user_id": ""}', RejectReason.INVALID_ID),
        (b'{"user_id": "a\\u0001b"}', RejectReason.INVALID_ID),
    ]))
    return Case(ERASURE, draw(KEYS), value, str(reason))


def valid_case(event: dict[str, Any], key: bytes | None) -> Case:
    return Case(HOME[event["event_type"]], key, orjson.dumps(event), None,
                user=event["user_id"], event_type=event["event_type"])
