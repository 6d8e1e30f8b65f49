"""decode_event on hand-picked inputs: every reason code, for the right input."""

from __future__ import annotations

import doctest
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from schemas import events
from schemas.contract import load_schema
from schemas.errors import InvalidLimitsError
from schemas.events import (
    DEFAULT_LIMITS,
    MAX_QUERY_CHARS,
    DecodeLimits,
    Event,
    EventType,
    Rejection,
    decode_event,
    decode_events,
)
from schemas.reasons import RejectReason as R
from schemas.timestamps import parse_rfc3339_ms

NOW = parse_rfc3339_ms("2026-11-23T18:00:00Z")
BASE: dict[str, Any] = {
    "event_id": "e-1",
    "event_type": "view",
    "user_id": "u-1",
    "item_id": "sku-1",
    "timestamp": "2026-11-23T17:59:59.500Z",
}


SEARCH: dict[str, Any] = {
    "event_id": "e-1",
    "event_type": "search",
    "user_id": "u-1",
    "timestamp": "2026-11-23T17:59:59.500Z",
    "properties": {"query": "red running shoes"},
}


def search(**changes: Any) -> bytes:
    """SEARCH with fields replaced; a value of ... removes the field."""
    data = {**SEARCH, **changes}
    return orjson.dumps({k: v for k, v in data.items() if v is not ...})


def doc(**changes: Any) -> bytes:
    """BASE with fields replaced; a value of ... removes the field."""
    data = {**BASE, **changes}
    return orjson.dumps({k: v for k, v in data.items() if v is not ...})


def decode(raw: bytes | None, topic: str = "views", limits: DecodeLimits = DEFAULT_LIMITS):
    return decode_event(raw, topic, limits, now_ms=NOW)


CASES: list[tuple[str, bytes | None, str, R]] = [
    ("tombstone", None, "views", R.EMPTY_PAYLOAD),
    ("zero bytes", b"", "views", R.EMPTY_PAYLOAD),
    ("whitespace", b" \n\t ", "views", R.EMPTY_PAYLOAD),
    ("oversized", doc(item_id="x" * 200, properties={"pad": "y" * 70_000}), "views",
     R.OVERSIZED_PAYLOAD),
    ("latin-1", doc(item_id="caf\u00e9").replace("\u00e9".encode(), b"\xe9"), "views", R.NOT_UTF8),
    ("truncated json", doc()[:-1], "views", R.INVALID_JSON),
    ("two documents", doc() + doc(), "views", R.INVALID_JSON),
    ("utf-8 bom", b"\xef\xbb\xbf" + doc(), "views", R.INVALID_JSON),
    ("NaN", doc(timestamp=1).replace(b"1}", b"NaN}"), "views", R.INVALID_JSON),
    ("array", b"[1, 2]", "views", R.NOT_AN_OBJECT),
    ("string", b'"view"', "views", R.NOT_AN_OBJECT),
    ("null", b"null", "views", R.NOT_AN_OBJECT),
    ("no event_id", doc(event_id=...), "views", R.MISSING_FIELD),
    ("no timestamp", doc(timestamp=...), "views", R.MISSING_FIELD),
    ("empty object", b"{}", "views", R.MISSING_FIELD),
    ("numeric user_id", doc(user_id=42), "views", R.WRONG_TYPE),
    ("null item_id", doc(item_id=None), "views", R.WRONG_TYPE),
    ("boolean timestamp", doc(timestamp=True), "views", R.WRONG_TYPE),
    ("fractional timestamp", doc(timestamp=1.5), "views", R.WRONG_TYPE),
    ("event_type number", doc(event_type=3), "views", R.WRONG_TYPE),
    ("properties array", doc(properties=[1]), "views", R.WRONG_TYPE),
    ("price string", doc(properties={"price": "9.99"}), "views", R.WRONG_TYPE),
    ("quantity fraction", doc(properties={"quantity": 1.5}), "views", R.WRONG_TYPE),
    ("session_id number", doc(session_id=7), "views", R.WRONG_TYPE),
    ("unknown type", doc(event_type="like"), "views", R.UNKNOWN_EVENT_TYPE),
    ("case matters", doc(event_type="View"), "views", R.UNKNOWN_EVENT_TYPE),
    ("purchase on views", doc(event_type="purchase"), "views", R.WRONG_TOPIC),
    ("view on clicks", doc(), "clicks", R.WRONG_TOPIC),
    ("click on purchases", doc(event_type="click"), "purchases", R.WRONG_TOPIC),
    ("empty id", doc(event_id=""), "views", R.INVALID_ID),
    ("long id", doc(user_id="u" * 257), "views", R.INVALID_ID),
    ("newline in id", doc(item_id="sku\n"), "views", R.INVALID_ID),
    ("nul in id", doc(item_id="a\u0000b"), "views", R.INVALID_ID),
    ("C1 control in id", doc(item_id="a\u0085b"), "views", R.INVALID_ID),
    ("empty session id", doc(session_id=""), "views", R.INVALID_ID),
    ("bad order id", doc(properties={"order_id": "o\t1"}), "views", R.INVALID_ID),
    ("words", doc(timestamp="yesterday"), "views", R.INVALID_TIMESTAMP),
    ("no offset", doc(timestamp="2026-11-23T17:59:59"), "views", R.INVALID_TIMESTAMP),
    ("date only", doc(timestamp="2026-11-23"), "views", R.INVALID_TIMESTAMP),
    ("space separator", doc(timestamp="2026-11-23 17:59:59Z"), "views", R.INVALID_TIMESTAMP),
    ("trailing newline", doc(timestamp="2026-11-23T17:59:59Z\n"), "views", R.INVALID_TIMESTAMP),
    ("leap second", doc(timestamp="2026-12-31T23:59:60Z"), "views", R.INVALID_TIMESTAMP),
    ("february 30", doc(timestamp="2026-02-30T00:00:00Z"), "views", R.INVALID_TIMESTAMP),
    ("year zero", doc(timestamp="0000-01-01T00:00:00Z"), "views", R.INVALID_TIMESTAMP),
    ("numeric string", doc(timestamp="1795456800000"), "views", R.INVALID_TIMESTAMP),
    ("negative ms", doc(timestamp=-1), "views", R.TIMESTAMP_OUT_OF_RANGE),
    ("before 1970", doc(timestamp="1969-12-31T23:59:59Z"), "replay", R.TIMESTAMP_OUT_OF_RANGE),
    ("seconds not ms", doc(timestamp=NOW // 1000), "views", R.TIMESTAMP_OUT_OF_RANGE),
    ("one hour ahead", doc(timestamp=NOW + 3_600_000), "views", R.TIMESTAMP_OUT_OF_RANGE),
    ("two years ago", doc(timestamp="2024-11-23T18:00:00Z"), "views", R.TIMESTAMP_OUT_OF_RANGE),
    ("year 9999", doc(timestamp="9999-12-31T23:59:59-23:59"), "views", R.TIMESTAMP_OUT_OF_RANGE),
    ("beyond 64-bit", doc(timestamp=1).replace(b":1}", b":18446744073709551616}"), "views",
     R.TIMESTAMP_OUT_OF_RANGE),
    ("schema_version 2", doc(schema_version="2"), "views", R.SCHEMA_VIOLATION),
    ("negative price", doc(properties={"price": -1}), "views", R.SCHEMA_VIOLATION),
    ("zero quantity", doc(properties={"quantity": 0}), "views", R.SCHEMA_VIOLATION),
    ("long category", doc(properties={"category": "c" * 257}), "views", R.SCHEMA_VIOLATION),
    # searches: no item, a query of 1-512 characters with one not whitespace
    ("view without item_id", doc(item_id=...), "views", R.MISSING_FIELD),
    ("search without properties", search(properties=...), "searches", R.MISSING_FIELD),
    ("search with null properties", search(properties=None), "searches", R.MISSING_FIELD),
    ("search without query", search(properties={"page": 2}), "searches", R.MISSING_FIELD),
    ("search with null query", search(properties={"query": None}), "searches",
     R.MISSING_FIELD),
    ("search query a number", search(properties={"query": 42}), "searches", R.WRONG_TYPE),
    ("search query 513 chars", search(properties={"query": "q" * 513}), "searches",
     R.OVERSIZED_QUERY),
    ("search query 5000 chars", search(properties={"query": "q" * 5000}), "searches",
     R.OVERSIZED_QUERY),
    ("view query 1025 chars", doc(properties={"query": "q" * 1025}), "views",
     R.OVERSIZED_QUERY),
    ("empty search query", search(properties={"query": ""}), "searches", R.SCHEMA_VIOLATION),
    ("blank search query", search(properties={"query": " \t\r\n"}), "searches",
     R.SCHEMA_VIOLATION),
    ("search with item_id", search(item_id="sku-1"), "searches", R.SCHEMA_VIOLATION),
    ("search with null item_id", search(item_id=None), "searches", R.SCHEMA_VIOLATION),
    ("search with empty item_id", search(item_id=""), "searches", R.SCHEMA_VIOLATION),
    ("search on views", search(), "views", R.WRONG_TOPIC),
    ("view on searches", doc(), "searches", R.WRONG_TOPIC),
]


@pytest.mark.parametrize(("raw", "topic", "reason"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_rejection_reason(raw: bytes | None, topic: str, reason: R) -> None:
    result = decode(raw, topic)
    assert isinstance(result, Rejection), result
    assert result.reason is reason, result.detail
    assert result.detail


def test_every_reason_is_produced_by_some_input() -> None:
    produced = {case[3] for case in CASES}
    # processing_error is the stream's to give (decoding succeeded, processing failed);
    # key_mismatch belongs to item records (tests/schemas/test_items.py).
    assert produced | {R.PROCESSING_ERROR, R.KEY_MISMATCH} == set(R)


def test_rejection_carries_event_id_when_readable() -> None:
    assert decode(doc(event_type="like")).event_id == "e-1"
    assert decode(doc(event_id="e\n1", event_type="like")).event_id is None
    assert decode(doc(event_id=5)).event_id is None
    assert decode(b"[]").event_id is None


def test_missing_field_detail_names_the_fields() -> None:
    result = decode(doc(user_id=..., item_id=...))
    assert result.reason is R.MISSING_FIELD
    assert "item_id" in result.detail and "user_id" in result.detail
    result = decode(search(user_id=..., properties=...), "searches")
    assert result.reason is R.MISSING_FIELD
    assert "user_id" in result.detail and "properties.query" in result.detail
    assert "item_id" not in result.detail


def test_search_rejections_say_what_to_fix() -> None:
    assert "item_id must be absent" in decode(search(item_id="sku-1"), "searches").detail
    assert "513 characters, the limit is 512" in decode(
        search(properties={"query": "q" * 513}), "searches").detail
    assert "the limit is 1024" in decode(doc(properties={"query": "q" * 1025})).detail
    assert "whitespace" in decode(search(properties={"query": "  "}), "searches").detail


def test_a_search_decodes_without_an_item() -> None:
    event = decode(search(session_id="s-1", properties={"query": "red shoes", "page": 2}),
                   "searches")
    assert isinstance(event, Event)
    assert event.event_type is EventType.SEARCH and not event.event_type.names_item
    assert event.item_id is None
    assert event.query == "red shoes"
    assert event.properties == {"query": "red shoes", "page": 2}
    assert "item_id" not in event.to_json_dict()
    assert decode(orjson.dumps(event.to_json_dict()), "searches") == event


@pytest.mark.parametrize(
    "query", ["q", "q" * 512, "  padded  ", "\u00a0", "\u3000x", "Schuhe für Damen", "a\nb"]
)
def test_search_query_bounds(query: str) -> None:
    event = decode(search(properties={"query": query}), "searches")
    assert isinstance(event, Event), event
    assert event.query == query  # kept as written, never trimmed


def test_query_is_only_a_searchs() -> None:
    # On a view, properties.query is the search that led to it: not the event's query.
    event = decode(doc(properties={"query": "shoes"}))
    assert isinstance(event, Event) and event.query is None and event.item_id == "sku-1"
    assert Event("e", EventType.SEARCH, "u", None, 0).query is None
    assert Event("e", EventType.SEARCH, "u", None, 0, properties={"query": 5}).query is None


def test_max_query_chars_is_the_schemas_bound() -> None:
    then = load_schema("event")["then"]["properties"]["properties"]["properties"]["query"]
    assert then["maxLength"] == MAX_QUERY_CHARS == 512
    assert [t for t in EventType if not t.names_item] == [EventType.SEARCH]


def test_seconds_instead_of_milliseconds_gets_a_hint() -> None:
    assert "seconds" in decode(doc(timestamp=NOW // 1000 - 5)).detail


def test_valid_event_fields() -> None:
    raw = doc(
        event_type="purchase",
        timestamp="2026-11-23T18:59:59.123456+01:00",
        session_id="s-1",
        properties={"price": 9.5, "quantity": 2, "order_id": "o-1", "gift": True},
        schema_version="1",
        brand_new_field={"anything": [1, 2]},
    )
    event = decode(raw, "purchases")
    assert event == Event(
        event_id="e-1",
        event_type=EventType.PURCHASE,
        user_id="u-1",
        item_id="sku-1",
        timestamp_ms=NOW - 1000 + 123,
        session_id="s-1",
        properties={"price": 9.5, "quantity": 2, "order_id": "o-1", "gift": True},
    )
    assert isinstance(event.properties, MappingProxyType)
    assert event.event_type == "purchase"


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-23T17:00:00Z", NOW - 3_600_000),
        ("2026-11-23t17:00:00z", NOW - 3_600_000),
        ("2026-11-23T12:00:00-05:00", NOW - 3_600_000),
        ("2026-11-23T17:00:00.9999Z", NOW - 3_600_000 + 999),
        (NOW - 5, NOW - 5),
        (float(NOW - 5), NOW - 5),
    ],
)
def test_timestamp_forms(timestamp: Any, expected: int) -> None:
    event = decode(doc(timestamp=timestamp))
    assert isinstance(event, Event)
    assert event.timestamp_ms == expected
    assert type(event.timestamp_ms) is int


def test_null_optionals_are_absent() -> None:
    event = decode(doc(session_id=None, properties=None))
    assert event.session_id is None and event.properties is None


def test_null_key_is_not_our_concern() -> None:
    # The decoder sees only the value: producers may key records any way, we re-key by user.
    assert isinstance(decode(doc()), Event)


def test_time_bounds_are_inclusive_and_configurable() -> None:
    limits = DecodeLimits(max_future_skew_s=10, max_past_age_s=60)
    assert isinstance(decode(doc(timestamp=NOW + 10_000), limits=limits), Event)
    assert decode(doc(timestamp=NOW + 10_001), limits=limits).reason is R.TIMESTAMP_OUT_OF_RANGE
    assert isinstance(decode(doc(timestamp=NOW - 60_000), limits=limits), Event)
    assert decode(doc(timestamp=NOW - 60_001), limits=limits).reason is R.TIMESTAMP_OUT_OF_RANGE


def test_payload_limit_is_inclusive() -> None:
    raw = doc()
    assert isinstance(decode(raw, limits=DecodeLimits(max_payload_bytes=len(raw))), Event)
    small = DecodeLimits(max_payload_bytes=len(raw) - 1)
    assert decode(raw, limits=small).reason is R.OVERSIZED_PAYLOAD


def test_routing_map() -> None:
    assert isinstance(decode(doc(event_type="add_to_cart"), "clicks"), Event)
    assert isinstance(decode(search(), "searches"), Event)
    assert isinstance(decode(search(), "replay"), Event)
    # A topic the map does not name accepts every type.
    assert isinstance(decode(doc(event_type="purchase"), "replay"), Event)
    custom = DecodeLimits(topic_event_types={"cart": {"add_to_cart"}})
    assert isinstance(decode(doc(event_type="add_to_cart"), "cart", custom), Event)
    assert decode(doc(event_type="view"), "cart", custom).reason is R.WRONG_TOPIC
    assert isinstance(decode(doc(event_type="view"), "views", custom), Event)


@pytest.mark.parametrize(
    "changes",
    [
        {"max_payload_bytes": 0},
        {"max_payload_bytes": 1.5},
        {"max_future_skew_s": 0},
        {"max_past_age_s": -1},
        {"max_past_age_s": float("inf")},
        {"max_future_skew_s": True},
        {"topic_event_types": {"views": {"watch"}}},
    ],
)
def test_impossible_limits_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidLimitsError):
        DecodeLimits(**changes)


def test_limits_accept_float_seconds() -> None:
    limits = DecodeLimits(max_future_skew_s=0.5, max_past_age_s=86_400.0)
    assert limits.future_ms == 500 and limits.past_ms == 86_400_000


def test_decode_events_matches_decode_event() -> None:
    raws = [doc(), None, doc(event_type="like"), doc(event_id="e-2")]
    assert decode_events(raws, "views", DEFAULT_LIMITS, NOW) == [decode(r) for r in raws]


def test_decode_defaults_to_the_wall_clock() -> None:
    # An event stamped at the epoch is out of range against any real "now".
    result = decode_event(doc(timestamp=0), "views")
    assert isinstance(result, Rejection) and result.reason is R.TIMESTAMP_OUT_OF_RANGE


def test_canonical_form_round_trips() -> None:
    event = decode(doc(session_id="s", properties={"query": "red shoes"}))
    canonical = event.to_json_dict()
    assert canonical["timestamp"] == event.timestamp_ms
    assert decode(orjson.dumps(canonical)) == event
    assert "session_id" not in decode(doc()).to_json_dict()


def test_nothing_before_1970_even_with_wide_limits() -> None:
    wide = DecodeLimits(max_past_age_s=1e12)
    result = decode(doc(timestamp="1969-12-31T23:59:59.999Z"), limits=wide)
    assert result.reason is R.TIMESTAMP_OUT_OF_RANGE
    assert "before 1970" in result.detail


def test_the_fast_path_takes_valid_searches_and_leaves_the_rest_to_the_schema() -> None:
    valid = [SEARCH, {**SEARCH, "session_id": "s", "properties": {"query": "q" * 512, "x": 1}}]
    assert all(events._fast_event_ok(d) for d in valid)
    invalid = [
        {**SEARCH, "item_id": "sku-1"},
        {**SEARCH, "properties": None},
        {**SEARCH, "properties": {"query": ""}},
        {**SEARCH, "properties": {"query": " \t"}},
        {**SEARCH, "properties": {"query": "q" * 513}},
        {k: v for k, v in SEARCH.items() if k != "properties"},
        {**BASE, "item_id": None},
        {k: v for k, v in BASE.items() if k != "item_id"},
    ]
    assert not any(events._fast_event_ok(d) for d in invalid)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(events).failed == 0


README_SEARCH = {
    "event_id": "9b2f4c1e-5a7d-4e0b-8c3f-1d6a2e9b7c40",
    "event_type": "search",
    "user_id": "u-42",
    "timestamp": "2026-11-23T17:59:30.250Z",
    "session_id": "sess-7f3a",
    "properties": {"query": "waterproof hiking boots"},
}


def test_the_readme_search_example_decodes_on_the_searches_topic() -> None:
    event = decode(orjson.dumps(README_SEARCH), "searches")
    assert isinstance(event, Event)
    assert (event.event_type, event.item_id, event.query) == (
        EventType.SEARCH, None, "waterproof hiking boots")
