"""The attribution log: feedback.schema.json, its examples and its codec."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import contract
from schemas.contract import load_schema
from schemas.errors import SchemaViolationError
from schemas.feedback import (
    ATTRIBUTED_EVENT_TYPES,
    MATCHED_BY,
    Attribution,
    Served,
    decode_feedback,
    encode_feedback,
)
from schemas.timestamps import parse_rfc3339_ms
from tests.schemas.test_schema_files import _id_rules

SCHEMA = load_schema("feedback")
REFERENCE = jsonschema.Draft7Validator(SCHEMA)
EXAMPLES = ["feedback-served", "feedback-attribution"]
T0 = parse_rfc3339_ms("2026-11-23T18:00:00.000Z")


def example(name: str) -> dict[str, Any]:
    path = resources.files("schemas").joinpath(f"examples/{name}.json")
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def served(**changes: Any) -> Served:
    values: dict[str, Any] = dict(recommendation_id="r-1", user_id="u-1", experiment="exp",
                                  variant="A", model_name="sessattn", model_version="v1",
                                  items=20, generated_at_ms=T0)
    values.update(changes)
    return Served(**values)


def attribution(**changes: Any) -> Attribution:
    values: dict[str, Any] = dict(
        recommendation_id="r-1", user_id="u-1", experiment="exp", variant="A",
        model_name="sessattn", model_version="v1", item_id="sku-1", position=2,
        event_type="purchase", event_id="e-1", event_time_ms=T0 + 5000, delay_ms=5000,
        revenue=39.98, matched_by="window")
    values.update(changes)
    return Attribution(**values)


def test_schema_is_valid_draft_07_and_documented() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"].endswith("/feedback.schema.json")
    assert SCHEMA["title"] and len(SCHEMA["description"]) > 50
    assert SCHEMA["properties"]["schema_version"]["const"] == contract.SCHEMA_VERSION
    assert "schema_version" in SCHEMA["required"]
    for name, prop in SCHEMA["properties"].items():
        assert prop.get("description"), name


def test_enums_match_the_python_code() -> None:
    assert tuple(SCHEMA["properties"]["event_type"]["enum"]) == ATTRIBUTED_EVENT_TYPES
    assert tuple(SCHEMA["properties"]["matched_by"]["enum"]) == MATCHED_BY


def test_every_id_rule_agrees_with_the_codecs() -> None:
    rules = _id_rules(SCHEMA)
    assert rules
    for rule in rules:
        pattern = re.compile(str(rule["pattern"]))
        for sample in ["sku-9", "x" * 256, "x" * 257, "", "a\x00b", "\x9f", "ok 1"]:
            in_schema = (int(str(rule.get("minLength", 0))) <= len(sample) <= 256
                         and pattern.match(sample) is not None)
            assert in_schema == contract.is_valid_id(sample), sample


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_are_valid_and_round_trip(name: str) -> None:
    data = example(name)
    REFERENCE.validate(data)
    record = decode_feedback(orjson.dumps(data))
    key, value = encode_feedback(record)
    assert key == data["user_id"].encode()
    assert orjson.loads(value) == data


@pytest.mark.parametrize("record", [
    served(), served(experiment=None, variant=None, items=0),
    attribution(), attribution(event_type="click", revenue=None, matched_by="recommendation_id"),
    attribution(revenue=None), attribution(revenue=0), attribution(experiment=None, variant=None),
], ids=repr)
def test_records_round_trip_and_pass_the_reference_validator(record: Served | Attribution
                                                             ) -> None:
    key, value = encode_feedback(record)
    REFERENCE.validate(orjson.loads(value))
    assert key == record.user_id.encode()
    assert decode_feedback(value) == record


def test_attribution_id_is_recommendation_item_and_type() -> None:
    assert attribution().attribution_id == "r-1:sku-1:purchase"
    assert attribution(event_id="e-2").attribution_id == attribution().attribution_id


@pytest.mark.parametrize(("record", "path"), [
    (served(user_id=""), "user_id"),
    (served(items=-1), "items"),
    (served(variant="x" * 129), "variant"),
    (attribution(position=0), "position"),
    (attribution(event_type="view"), "event_type"),
    (attribution(delay_ms=-1), "delay_ms"),
    (attribution(revenue=-1.0), "revenue"),
    (attribution(event_type="click", revenue=2.0), "revenue"),
    (attribution(matched_by="guess"), "matched_by"),
    (attribution(item_id="a\x00b"), "item_id"),
])
def test_encoding_a_broken_record_raises_naming_the_field(record: Served | Attribution,
                                                         path: str) -> None:
    with pytest.raises(SchemaViolationError) as caught:
        encode_feedback(record)
    assert caught.value.schema == "feedback"
    assert path in (caught.value.path or str(caught.value))


@pytest.mark.parametrize("revenue", [float("nan"), float("inf")])
def test_revenue_must_be_finite(revenue: float) -> None:
    with pytest.raises(SchemaViolationError, match="finite"):
        encode_feedback(attribution(revenue=revenue))


def test_a_time_outside_the_calendar_raises() -> None:
    with pytest.raises(SchemaViolationError, match="impossible time"):
        encode_feedback(served(generated_at_ms=10**16))


@pytest.mark.parametrize("value", [
    None, b"", b"not json", b"[]", b'{"kind": "served"}',
    orjson.dumps({**example("feedback-served"), "item_id": "sku-1"}),  # another kind's field
    orjson.dumps({**example("feedback-attribution"), "items": 3}),
    orjson.dumps({**example("feedback-served"), "surprise": 1}),
    orjson.dumps({**example("feedback-served"), "generated_at": "2026-11-23T18:00:05Z"}),
])
def test_decoding_anything_else_raises_schema_violation(value: bytes | None) -> None:
    with pytest.raises(SchemaViolationError):
        decode_feedback(value)


@given(st.builds(
    attribution,
    position=st.integers(1, 1000),
    event_type=st.sampled_from(["click", "add_to_cart"]),
    delay_ms=st.integers(0, 10**10),
    revenue=st.none(),
    item_id=st.text(min_size=1, max_size=20).filter(contract.is_valid_id),
))
def test_any_valid_attribution_round_trips(record: Attribution) -> None:
    assert decode_feedback(encode_feedback(record)[1]) == record


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False))
def test_any_revenue_round_trips(revenue: float) -> None:
    record = attribution(revenue=revenue)
    assert decode_feedback(encode_feedback(record)[1]) == record
