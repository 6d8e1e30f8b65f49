"""decode_event against random inputs: it never raises, and it agrees with the reference
validator (``jsonschema``) reading the same schema file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jsonschema
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import events
from schemas import timestamps as rfc3339_codec
from schemas.contract import load_schema
from schemas.events import DecodeLimits, Event, Rejection, decode_event
from schemas.reasons import RejectReason as R

NOW = rfc3339_codec.parse_rfc3339_ms("2026-11-23T18:00:00Z")
REFERENCE = jsonschema.Draft7Validator(load_schema("event"))
# Wide time bounds and a topic outside the routing map: only the schema should decide.
WIDE = DecodeLimits(max_future_skew_s=1e13, max_past_age_s=1e13, max_payload_bytes=1 << 20)
TOPIC = "replay"
# Reasons the schema alone cannot give: they need the calendar or the clock.
SEMANTIC = {R.INVALID_TIMESTAMP, R.TIMESTAMP_OUT_OF_RANGE}
SCHEMA_REASONS = {
    R.NOT_AN_OBJECT, R.MISSING_FIELD, R.WRONG_TYPE, R.UNKNOWN_EVENT_TYPE, R.INVALID_ID,
    R.INVALID_TIMESTAMP, R.TIMESTAMP_OUT_OF_RANGE, R.SCHEMA_VIOLATION, R.OVERSIZED_QUERY,
}
MISSING = object()
PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

no_surrogates = st.characters(exclude_categories=["Cs"])
any_text = st.text(no_surrogates, max_size=12)
json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(
    allow_nan=False, allow_infinity=False
) | any_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)
ids = st.one_of(
    st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=12),
    st.sampled_from(["", "x" * 256, "x" * 257, "a\n", "\x7f", "a\u0085", "ok"]),
    any_text,
    json_values,
)
event_types = st.sampled_from(
    ["view", "click", "add_to_cart", "purchase", "search", "Search"]) | any_text | json_values
# Search queries near every bound: empty, blank (ASCII and other whitespace), 512/513, 1024/1025.
queries = st.one_of(
    any_text,
    st.sampled_from(["", " ", "\t\n", "\u00a0", " x ", "\x0b", "\x0c\r", "\x1c", "\ufeff"]),
    st.sampled_from([512, 513, 1024, 1025]).map(lambda n: "q" * n),
    json_values,
)
valid_queries = st.text(no_surrogates, min_size=1, max_size=12).filter(
    lambda q: q.strip("\t\n\v\f\r ") != "") | st.just("q" * 512)


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    offset_min = draw(st.integers(-23 * 60 - 59, 23 * 60 + 59))
    text = moment.replace(tzinfo=timezone(timedelta(minutes=offset_min))).isoformat()
    if draw(st.booleans()) and offset_min == 0:
        text = text.replace("+00:00", draw(st.sampled_from(["Z", "z"])))
    return text


timestamps = st.one_of(
    rfc3339(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([
        "2026-02-30T00:00:00Z", "2026-11-23T18:00:00", "2026-11-23 18:00:00Z",
        "2026-11-23T18:00:00Z\n", "2026-12-31T23:59:60Z", "0000-01-01T00:00:00Z",
        "2026-11-23T18:00:00.123456789123+05:30", "2026-11-23T24:00:00Z", "",
    ]),
    json_values,
)
properties = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "price": st.floats(-1, 1e6, allow_nan=False) | st.integers(-5, 5) | json_values,
            "quantity": st.integers(-1, 5) | st.floats(0, 5, allow_nan=False) | json_values,
            "order_id": ids,
            "category": any_text | st.just("c" * 257) | json_values,
            "query": queries,
            "other": json_values,
        },
    ),
    json_values,
)


clean_ids = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=8)
valid_properties = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "price": st.floats(0, 1e6, allow_nan=False) | st.integers(0, 100),
        "quantity": st.integers(1, 5) | st.sampled_from([1.0, 3.0]),
        "order_id": clean_ids,
        "category": any_text,
        "query": st.text(no_surrogates, max_size=12) | st.just("q" * 1024),
        "other": json_values,
    },
)
valid_search_properties = st.fixed_dictionaries(
    # now and then one character too many, so a search that is otherwise valid reaches the
    # query-length rule (the coverage guard below needs it)
    {"query": valid_queries | st.just("q" * 513)},
    optional={"category": any_text, "other": json_values},
)
# field -> (strategy of valid values, strategy of anything, required)
FIELDS = {
    "event_id": (clean_ids, ids, True),
    "event_type": (st.sampled_from(["view", "click", "add_to_cart", "purchase"]), event_types,
                   True),
    "user_id": (clean_ids, ids, True),
    "item_id": (clean_ids, ids, True),
    "timestamp": (rfc3339() | st.integers(0, 2**41), timestamps, True),
    "session_id": (st.none() | clean_ids, ids, False),
    "properties": (valid_properties, properties, False),
    "schema_version": (st.just("1"), st.sampled_from(["1", "2", 1, None]), False),
    "extra": (json_values, json_values, False),
}


# A search names no item and needs a query: its fields are drawn from these instead.
SEARCH_FIELDS = {
    **FIELDS,
    "event_type": (st.just("search"), event_types, True),
    "item_id": (clean_ids, ids, False),  # present only when "anything" is drawn: invalid
    "properties": (valid_search_properties, properties | valid_properties, True),
}


@st.composite
def event_documents(draw: st.DrawFn) -> Any:
    """Event-shaped objects whose fields are each usually valid, sometimes anything, sometimes
    missing; now and then not an object at all. About a third are search-shaped."""
    if draw(st.integers(0, 29)) == 0:
        return draw(json_values)
    document = {}
    is_search = draw(st.integers(0, 2)) == 0
    for name, (valid, anything, required) in (SEARCH_FIELDS if is_search else FIELDS).items():
        if is_search and name == "item_id":
            if draw(st.integers(0, 9)) == 0:
                document[name] = draw(anything)
            continue
        if draw(st.integers(0, 39 if required else 1)) == 0:
            continue
        document[name] = draw(valid if draw(st.integers(0, 5)) else anything)
    return document


def test_the_generator_covers_every_search_outcome() -> None:
    # Not a property of the codec: a guard that the inputs above keep covering searches.
    seen: set[object] = set()

    @settings(max_examples=400, deadline=None, derandomize=True)
    @given(event_documents())
    def collect(document: Any) -> None:
        if isinstance(document, dict) and document.get("event_type") == "search":
            result = decode_event(orjson.dumps(document), TOPIC, WIDE, now_ms=NOW)
            seen.add("valid" if isinstance(result, Event) else result.reason)

    collect()
    assert {"valid", R.MISSING_FIELD, R.OVERSIZED_QUERY, R.SCHEMA_VIOLATION} <= seen, seen


def _calendar_invalid(timestamp: Any) -> bool:
    try:
        datetime.fromisoformat(timestamp.upper())
    except ValueError:
        return True
    return False


@PROFILE
@given(event_documents())
def test_codec_agrees_with_reference_validator(document: Any) -> None:
    raw = orjson.dumps(document)
    result = decode_event(raw, TOPIC, WIDE, now_ms=NOW)
    valid = REFERENCE.is_valid(document)
    if isinstance(result, Event):
        assert valid, f"codec accepted what the schema rejects: {document!r}"
        return
    if valid:
        assert result.reason in SEMANTIC, (result, document)
        if result.reason is R.INVALID_TIMESTAMP:
            assert _calendar_invalid(document["timestamp"]), document
        return
    assert result.reason in SCHEMA_REASONS, (result, document)


@PROFILE
@given(event_documents())
def test_fast_path_accepts_nothing_the_schema_rejects(document: Any) -> None:
    if events._fast_event_ok(document):
        assert REFERENCE.is_valid(document), document


@PROFILE
@given(st.binary(max_size=400))
def test_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    assert isinstance(decode_event(raw, "views", now_ms=NOW), Event | Rejection)


@PROFILE
@given(event_documents(), st.data())
def test_never_raises_on_damaged_events(document: Any, data: st.DataObject) -> None:
    raw = bytearray(orjson.dumps(document))
    for _ in range(data.draw(st.integers(0, 3))):
        if raw:
            position = data.draw(st.integers(0, len(raw) - 1))
            raw[position] = data.draw(st.integers(0, 255))
    for topic in ("views", "clicks", "purchases", "other"):
        result = decode_event(bytes(raw), topic, now_ms=NOW)
        assert isinstance(result, Event | Rejection)
        if isinstance(result, Rejection):
            assert isinstance(result.reason, R) and result.detail


@PROFILE
@given(event_documents())
def test_accepted_events_round_trip_through_canonical_form(document: Any) -> None:
    event = decode_event(orjson.dumps(document), TOPIC, WIDE, now_ms=NOW)
    if isinstance(event, Event):
        canonical = event.to_json_dict()
        assert REFERENCE.is_valid(canonical)
        assert decode_event(orjson.dumps(canonical), TOPIC, WIDE, now_ms=NOW) == event


@PROFILE
@given(st.integers(rfc3339_codec.MIN_MS, rfc3339_codec.MAX_MS))
def test_rfc3339_format_and_parse_are_inverse(ms: int) -> None:
    text = rfc3339_codec.format_rfc3339_ms(ms)
    assert rfc3339_codec.parse_rfc3339_ms(text) == ms
    assert datetime.fromisoformat(text) == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        milliseconds=ms
    )
