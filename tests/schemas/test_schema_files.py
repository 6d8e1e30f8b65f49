"""The schema files themselves: well-formed draft-07, documented, examples valid, in sync with
the Python enums."""

from __future__ import annotations

import re
from importlib import resources

import jsonschema
import orjson
import pytest

from schemas import contract, dead_letters, events, recommendations, timestamps
from schemas.contract import load_schema
from schemas.events import EventType
from schemas.reasons import FallbackReason, RejectReason

SCHEMAS = ["event", "recommendation", "dead_letter"]


def _example(name: str) -> dict:
    return orjson.loads(resources.files("schemas").joinpath(f"examples/{name}.json").read_bytes())


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_draft_07_and_documented(name: str) -> None:
    schema = load_schema(name)
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$id"].endswith(f"/{name}.schema.json")
    assert schema["title"] and len(schema["description"]) > 50
    assert schema["properties"]["schema_version"]["const"] == contract.SCHEMA_VERSION


@pytest.mark.parametrize("name", ["recommendation", "dead_letter"])
def test_produced_messages_require_schema_version(name: str) -> None:
    assert "schema_version" in load_schema(name)["required"]


@pytest.mark.parametrize("name", SCHEMAS)
def test_example_is_valid(name: str) -> None:
    jsonschema.Draft7Validator(load_schema(name)).validate(_example(name))


def test_event_example_decodes() -> None:
    example = _example("event")
    now = timestamps.parse_rfc3339_ms(example["timestamp"]) + 1000
    event = events.decode_event(orjson.dumps(example), "purchases", now_ms=now)
    assert isinstance(event, events.Event)
    assert event.event_id == example["event_id"]


def test_dead_letter_example_decodes() -> None:
    raw = orjson.dumps(_example("dead_letter"))
    assert dead_letters.decode_dead_letter(raw) == _example("dead_letter")


def test_recommendation_example_encodes() -> None:
    encoded = recommendations.encode_recommendation(_example("recommendation"))
    assert orjson.loads(encoded) == _example("recommendation")


def test_enums_match_the_python_code() -> None:
    event = load_schema("event")
    assert event["properties"]["event_type"]["enum"] == [t.value for t in EventType]
    recommendation = load_schema("recommendation")
    trigger_types = recommendation["properties"]["trigger"]["properties"]["event_type"]["enum"]
    assert trigger_types == [t.value for t in EventType]
    assert recommendation["properties"]["fallback"]["enum"] == [None] + [
        r.value for r in FallbackReason
    ]
    dead_letter = load_schema("dead_letter")
    assert dead_letter["properties"]["reason"]["enum"] == [r.value for r in RejectReason]


def test_timestamp_pattern_is_the_one_the_codec_uses() -> None:
    pattern = load_schema("event")["properties"]["timestamp"]["pattern"]
    assert pattern == timestamps.RFC3339_PATTERN


def test_fast_path_was_written_for_this_schema() -> None:
    fingerprint = contract.schema_fingerprint(load_schema("event"))
    assert events.FAST_PATH_ENABLED, (
        "event.schema.json changed: review schemas.events._fast_event_ok against it (it must "
        "accept nothing the schema rejects), then set _FAST_PATH_SCHEMA_SHA256 = "
        f"{fingerprint!r}"
    )


def test_fingerprint_ignores_annotations_only() -> None:
    schema = load_schema("event")
    base = contract.schema_fingerprint(schema)
    schema["description"] = "reworded"
    schema["properties"]["event_id"]["description"] = "reworded"
    assert contract.schema_fingerprint(schema) == base
    schema["definitions"]["id"]["maxLength"] = 512
    assert contract.schema_fingerprint(schema) != base


def test_load_schema_returns_a_fresh_copy() -> None:
    first = load_schema("event")
    first["required"].clear()
    assert load_schema("event")["required"]


def _id_rules(node: object) -> list[dict[str, object]]:
    """Every sub-schema in ``node`` that restricts a string like an id does."""
    found: list[dict[str, object]] = []
    if isinstance(node, dict):
        if node.get("maxLength") == 256 and "pattern" in node:
            found.append(node)
        for value in node.values():
            found.extend(_id_rules(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_id_rules(value))
    return found


@pytest.mark.parametrize("name", ["event", "dead_letter", "recommendation"])
def test_every_id_rule_in_the_schemas_agrees_with_the_codecs(name: str) -> None:
    rules = _id_rules(load_schema(name))
    assert rules, f"{name}.schema.json has no id rule"
    samples = ["sku-9", "ü-1", "x" * 256, "x" * 257, "", "a\x00b", "tab\there", "\x9f", "ok 1"]
    for rule in rules:
        pattern = re.compile(str(rule["pattern"]))
        for sample in samples:
            in_schema = (int(str(rule.get("minLength", 0))) <= len(sample) <= 256
                         and pattern.match(sample) is not None)
            assert in_schema == contract.is_valid_id(sample), (name, sample)
