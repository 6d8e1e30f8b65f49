"""Recommendations and dead letters: built, validated against their schema files, round-trip."""

from __future__ import annotations

import base64
import math
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import contract, recommendations
from schemas.contract import load_schema
from schemas.dead_letters import decode_dead_letter, encode_dead_letter
from schemas.errors import InvalidTimestampError, SchemasError, SchemaViolationError
from schemas.events import Event, EventType, Rejection
from schemas.reasons import FallbackReason, RejectReason
from schemas.recommendations import (
    build_recommendation,
    encode_recommendation,
    recommendation_id_for,
)
from schemas.timestamps import format_rfc3339_ms, parse_rfc3339_ms

NOW = parse_rfc3339_ms("2026-11-23T18:00:00.250Z")
TRIGGER = Event("e-9", EventType.ADD_TO_CART, "u-1", "sku-3", NOW - 1500)
RECOMMENDATION = jsonschema.Draft7Validator(load_schema("recommendation"))
DEAD_LETTER = jsonschema.Draft7Validator(load_schema("dead_letter"))


def recommendation(**changes: Any) -> dict[str, Any]:
    message = build_recommendation(
        "u-1", [("sku-1", 2.5), ("sku-2", 1)], "sasrec", "7", TRIGGER, NOW, None
    )
    message.update(changes)
    return message


def test_build_recommendation() -> None:
    assert recommendation() == {
        "schema_version": "1",
        "user_id": "u-1",
        "items": [{"item_id": "sku-1", "score": 2.5}, {"item_id": "sku-2", "score": 1.0}],
        "model": {"name": "sasrec", "version": "7"},
        "trigger": {
            "event_id": "e-9",
            "event_type": "add_to_cart",
            "event_time": "2026-11-23T17:59:58.750Z",
        },
        "generated_at": "2026-11-23T18:00:00.250Z",
        "fallback": None,
        "recommendation_id": recommendation_id_for("u-1", "e-9", str(NOW)),
        "experiment": None,
    }


def test_a_recommendation_names_its_experiment_and_variant() -> None:
    message = build_recommendation(
        "u-1", [("sku-1", 2.5)], "sasrec", "7", TRIGGER, NOW, None,
        recommendation_id="r-1", experiment={"name": "spring", "variant": "B"})
    decoded = orjson.loads(encode_recommendation(message))
    assert decoded["recommendation_id"] == "r-1"
    assert decoded["experiment"] == {"name": "spring", "variant": "B"}
    assert RECOMMENDATION.is_valid(decoded)


@pytest.mark.parametrize("experiment", [{"name": "x"}, {"name": "", "variant": "A"},
                                        {"name": "x", "variant": "A", "extra": "1"}, "A"])
def test_a_malformed_experiment_is_refused(experiment: Any) -> None:
    with pytest.raises(SchemaViolationError):
        encode_recommendation(recommendation(experiment=experiment))


def test_recommendation_ids_differ_per_user_trigger_and_discriminator() -> None:
    ids = {recommendation_id_for(u, e, d) for u in ("u1", "u2") for e in ("e1", "e2")
           for d in ("1", "2")}
    assert len(ids) == 8 and all(len(i) == 32 for i in ids)


def test_encode_recommendation_is_schema_valid_json() -> None:
    encoded = encode_recommendation(recommendation())
    assert RECOMMENDATION.is_valid(orjson.loads(encoded))
    assert orjson.loads(encoded) == recommendation()


def test_trigger_may_be_an_event_reference() -> None:
    class Ref:
        event_id = "e-9"
        event_type = "add_to_cart"
        event_time_ms = NOW - 1500

    built = build_recommendation("u-1", [], "trending", "1", Ref(), NOW, "no_history")
    assert built["trigger"] == recommendation()["trigger"]
    assert orjson.loads(encode_recommendation(built))["items"] == []


@pytest.mark.parametrize("fallback", list(FallbackReason))
def test_every_fallback_reason_encodes(fallback: FallbackReason) -> None:
    message = recommendation(fallback=fallback, model={"name": "trending", "version": "1"})
    assert orjson.loads(encode_recommendation(message))["fallback"] == fallback.value


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"fallback": "bored"}, "fallback"),
        ({"user_id": ""}, "user_id"),
        ({"items": [{"item_id": "a", "score": "high"}]}, "items[0].score"),
        ({"items": [{"item_id": "a", "score": math.nan}]}, "items[0].score"),
        ({"items": [{"item_id": "a", "score": math.inf}]}, "items[0].score"),
        ({"items": [{"item_id": "a", "score": 1}, {"item_id": "a", "score": 0}]},
         "items[1].item_id"),
        ({"generated_at": "2026-11-23T18:00:00Z"}, "generated_at"),
        ({"schema_version": "2"}, "schema_version"),
        ({"surprise": 1}, ""),
        ({"model": {"name": "m"}}, "model"),
    ],
)
def test_encode_recommendation_refuses_contract_breaks(changes: dict[str, Any], path: str) -> None:
    with pytest.raises(SchemaViolationError) as caught:
        encode_recommendation(recommendation(**changes))
    assert caught.value.schema == "recommendation"
    assert caught.value.path == path
    assert isinstance(caught.value, SchemasError)


def test_encode_recommendation_accepts_any_mapping() -> None:
    from types import MappingProxyType

    assert encode_recommendation(MappingProxyType(recommendation())) == encode_recommendation(
        recommendation()
    )


def dead_letter(rejection: Rejection, key: bytes | None, value: bytes | None, **kw: Any) -> bytes:
    args: dict[str, Any] = {
        "raw_key": key, "raw_value": value, "topic": "views", "partition": 2, "offset": 41,
        "timestamp_ms": NOW - 10, "received_at_ms": NOW,
    }
    args.update(kw)
    return encode_dead_letter(rejection, **args)


def test_dead_letter_round_trip() -> None:
    value = b'{"event_id": "e-1", "event_type": "like"}\xff'
    raw = dead_letter(Rejection(RejectReason.UNKNOWN_EVENT_TYPE, "like?", "e-1"), b"k", value)
    message = decode_dead_letter(raw)
    assert DEAD_LETTER.is_valid(message)
    assert message["reason"] == "unknown_event_type"
    assert message["event_id"] == "e-1"
    assert message["source"] == {"topic": "views", "partition": 2, "offset": 41,
                                 "timestamp_ms": NOW - 10}
    assert base64.b64decode(message["original_value_b64"]) == value
    assert base64.b64decode(message["original_key_b64"]) == b"k"
    assert message["original_value_size"] == len(value)
    assert message["truncated"] is False
    assert message["received_at"] == "2026-11-23T18:00:00.250Z"


def test_dead_letter_without_key_value_or_timestamp() -> None:
    raw = dead_letter(Rejection(RejectReason.EMPTY_PAYLOAD, "tombstone"), None, None,
                      timestamp_ms=None)
    message = decode_dead_letter(raw)
    assert message["original_key_b64"] is None and message["original_value_b64"] is None
    assert message["original_key_size"] is None and message["source"]["timestamp_ms"] is None


def test_dead_letter_survives_odd_metadata_and_detail() -> None:
    rejection = Rejection(RejectReason.PROCESSING_ERROR, "bad \ud800 surrogate", "e-1")
    message = decode_dead_letter(dead_letter(rejection, None, b"{}", timestamp_ms=-1))
    assert message["source"]["timestamp_ms"] is None
    assert message["detail"] == "bad ? surrogate"


def test_processing_error_dead_letter() -> None:
    rejection = Rejection(RejectReason.PROCESSING_ERROR, "scorer exploded", "e-1")
    assert decode_dead_letter(dead_letter(rejection, None, b"{}"))["reason"] == "processing_error"


def test_dead_letter_truncates_huge_originals() -> None:
    value = bytes(range(256)) * 10
    raw = dead_letter(Rejection(RejectReason.OVERSIZED_PAYLOAD, "big"), b"key", value,
                      max_original_bytes=1000)
    message = decode_dead_letter(raw)
    assert message["truncated"] is True
    assert base64.b64decode(message["original_value_b64"]) == value[:1000]
    assert message["original_value_size"] == len(value)


def test_dead_letter_drops_an_invalid_event_id_and_long_detail() -> None:
    rejection = Rejection(RejectReason.INVALID_ID, "x" * 5000, "bad\nid")
    message = decode_dead_letter(dead_letter(rejection, None, b"{}"))
    assert message["event_id"] is None
    assert len(message["detail"]) == 1024


def test_dead_letter_refuses_an_impossible_source() -> None:
    with pytest.raises(SchemaViolationError) as caught:
        dead_letter(Rejection(RejectReason.INVALID_JSON, "x"), None, b"{", offset=-1)
    assert caught.value.path == "source.offset"


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'{"schema_version": "1"}', orjson.dumps({"reason": "gremlins"})],
)
def test_decode_dead_letter_refuses_other_messages(raw: bytes) -> None:
    with pytest.raises(SchemaViolationError):
        decode_dead_letter(raw)


@settings(max_examples=100, deadline=None)
@given(
    reason=st.sampled_from(list(RejectReason)),
    detail=st.text(st.characters(exclude_categories=[]), max_size=2000),  # surrogates too
    key=st.none() | st.binary(max_size=64),
    value=st.none() | st.binary(max_size=2048),
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**63 - 1),
)
def test_dead_letters_always_valid_and_lossless(
    reason: RejectReason, detail: str, key: bytes | None, value: bytes | None,
    partition: int, offset: int,
) -> None:
    raw = dead_letter(Rejection(reason, detail), key, value, partition=partition, offset=offset)
    message = orjson.loads(raw)
    assert DEAD_LETTER.is_valid(message)
    for field, original in (("original_key_b64", key), ("original_value_b64", value)):
        encoded = message[field]
        assert (None if encoded is None else base64.b64decode(encoded)) == original


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.001Z", 1),
        ("1970-01-01T00:00:00.0009Z", 0),
        ("1969-12-31T23:59:59.9995Z", -1),
        ("2026-11-23T19:00:00.25+01:00", NOW),
        ("0001-01-01T00:00:00Z", -62_135_596_800_000),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
    ],
)
def test_parse_rfc3339(text: str, ms: int) -> None:
    assert parse_rfc3339_ms(text) == ms


@pytest.mark.parametrize(
    "text",
    ["2026-11-23T18:00:00", "2026-11-23", "20261123T180000Z", "2026-11-23T18:00:00+0100",
     "2026-02-29T00:00:00Z", "2026-11-23T18:00:00Z\n", " 2026-11-23T18:00:00Z", "soon"],
)
def test_parse_rfc3339_refuses(text: str) -> None:
    with pytest.raises(InvalidTimestampError):
        parse_rfc3339_ms(text)


def test_format_rfc3339() -> None:
    assert format_rfc3339_ms(NOW) == "2026-11-23T18:00:00.250Z"
    assert format_rfc3339_ms(-62_135_596_800_000) == "0001-01-01T00:00:00.000Z"
    with pytest.raises(InvalidTimestampError):
        format_rfc3339_ms(253_402_300_800_000)


# The emission fast path: it may only accept what recommendation.schema.json accepts.

_IDS = st.one_of(st.text("abcXYZ019-_.:ü用🎉 ", min_size=1, max_size=40),
                st.sampled_from(["x" * 256, "x" * 257, "", "tab\there", "nl\n", "\x7f",
                                 "\x9f", "\xa0ok", "end\n"]))
_ODD = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
                 st.text(max_size=4), st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_TIMES = st.sampled_from(["2026-11-23T18:00:00.250Z", "2026-11-23T18:00:00Z",
                          "2026-13-23T18:00:00.250Z", "2026-11-23T18:00:00.250Z\n",
                          "2026-11-23T24:00:00.250Z", "2026-11-23 18:00:00.250Z"])
_DAMAGES = st.sampled_from(["odd", "drop", "extra", "id", "time"])
_REASONS = st.sampled_from([
    {"kind": "sequence"}, {"kind": "similar", "item_id": "sku-9"},
    {"kind": "search", "query": "数字 pH\tmeter"}, {"kind": "trending"},
    {"kind": "new_item"}, {"kind": "boosted", "rule": "spring-sale"},
    {"kind": "similar"}, {"kind": "boosted", "rule": "tab\trule"}, {"kind": "nope"},
    {"kind": "search", "query": ""}, {"kind": "sequence", "item_id": "x" * 257},
])


@st.composite
def near_recommendations(draw: st.DrawFn) -> Any:
    """Valid messages as build_recommendation makes them; most get 1-2 fields damaged."""
    items = [{"item_id": f"sku-{i}", "score": draw(st.one_of(
        st.floats(-1e6, 1e6), st.integers(-5, 5)))} for i in range(draw(st.integers(0, 5)))]
    for item in items:
        reason = draw(st.one_of(st.none(), _REASONS))
        if reason is not None:
            item["reason"] = dict(reason)
    message: dict[str, Any] = build_recommendation(
        "u-1", [], "sessattn", "7", TRIGGER, NOW,
        draw(st.sampled_from([None, *FallbackReason])))
    message["items"] = items
    for _ in range(draw(st.sampled_from([0, 1, 1, 2]))):
        last = items[-1] if items and isinstance(items[-1], dict) else None
        container = draw(st.sampled_from(
            ["top", "model", "trigger"] + (["item"] if last is not None else [])
            + (["reason"] if last is not None and isinstance(last.get("reason"), dict)
               else [])))
        target = {"top": message, "model": message.get("model"),
                  "trigger": message.get("trigger"), "item": last,
                  "reason": last.get("reason") if last is not None else None}[container]
        if not isinstance(target, dict) or not target:  # an earlier damage replaced it
            continue
        key = draw(st.sampled_from(sorted(target)))
        damage = draw(_DAMAGES)
        if damage == "odd":
            target[key] = draw(_ODD)
        elif damage == "drop":
            del target[key]
        elif damage == "extra":
            target[draw(st.sampled_from(["extra", "rank", ""]))] = 1
        elif damage == "id":
            target[key] = draw(_IDS)
        else:
            target[key] = draw(_TIMES)
    return message


@settings(max_examples=400, deadline=None)
@given(near_recommendations())
def test_fast_path_accepts_nothing_the_schema_rejects(message: Any) -> None:
    if recommendations._fast_recommendation_ok(message):
        assert RECOMMENDATION.is_valid(message), message


def test_fast_path_takes_what_build_recommendation_makes() -> None:
    assert recommendations.RECOMMENDATION_FAST_PATH_ENABLED, (
        "recommendation.schema.json changed: review "
        "schemas.recommendations._fast_recommendation_ok against it, then set "
        "_RECOMMENDATION_FAST_PATH_SHA256 = "
        f"{contract.schema_fingerprint(load_schema('recommendation'))!r}")
    for fallback in (None, *FallbackReason):
        message = build_recommendation("ü-1", [(f"sku-{i}", 1.0 / (i + 1)) for i in range(20)],
                                       "sessattn", "20261123T2027Z", TRIGGER, NOW, fallback)
        assert recommendations._fast_recommendation_ok(message)
    reasons = [{"kind": "sequence"}, {"kind": "similar", "item_id": "sku-1"},
               {"kind": "search", "query": "pH 计"}, {"kind": "trending"},
               {"kind": "new_item"}, {"kind": "boosted", "rule": "spring"}, None]
    message = build_recommendation("u", [(f"sku-{i}", 1.0, r) for i, r in enumerate(reasons)],
                                   "sessattn", "1", TRIGGER, NOW, None)
    assert recommendations._fast_recommendation_ok(message)
    RECOMMENDATION.validate(message)
    assert "reason" not in message["items"][-1]
    assert not recommendations._fast_recommendation_ok(recommendation(user_id="tab\there"))


@pytest.mark.parametrize("reason", [
    {"kind": "similar"}, {"kind": "search"}, {"kind": "boosted"}, {"kind": "because"},
    {"kind": "trending", "why": "x"}, {"kind": "search", "query": ""},
])
def test_a_malformed_reason_is_refused(reason: dict[str, Any]) -> None:
    message = build_recommendation("u", [("sku-1", 1.0, reason)], "m", "1", TRIGGER, NOW, None)
    with pytest.raises(SchemaViolationError, match="reason"):
        encode_recommendation(message)
