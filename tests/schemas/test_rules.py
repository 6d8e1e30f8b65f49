"""Business rules: rule.schema.json, its codec (every kind, every rejection) and the setting."""

from __future__ import annotations

import doctest
import re
from importlib import resources
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas.rules
from schemas import contract
from schemas.contract import load_schema
from schemas.events import Rejection
from schemas.reasons import RejectReason
from schemas.rules import (
    RULE_ID_PATTERN,
    Boost,
    CategoryCap,
    ExcludeCategories,
    ExcludeItems,
    ExcludePurchased,
    InvalidRuleError,
    PriceRange,
    RuleKind,
    RuleRemoved,
    decode_rule,
    encode_rule,
    parse_rule_list,
    rule_from_json,
)

RULE_SCHEMA = jsonschema.Draft7Validator(load_schema("rule"))

# One rule of each kind, as the README shows them.
EXAMPLES: dict[str, dict[str, Any]] = {
    "exclude_items": {"rule_id": "recalled-batch-7", "kind": "exclude_items",
                      "items": ["sku-1001", "sku-1002"], "note": "Recall notice 2026-11"},
    "exclude_items_for_user": {"rule_id": "u-4711-no-ladders", "kind": "exclude_items",
                               "items": ["sku-77"], "user_id": "u-4711"},
    "exclude_categories": {"rule_id": "no-alcohol", "kind": "exclude_categories",
                           "categories": ["Wine", "Spirits"]},
    "boost": {"rule_id": "apera-promo", "kind": "boost", "brands": ["Apera"],
              "categories": ["pH meters"], "factor": 1.5},
    "category_cap": {"rule_id": "max-3-per-category", "kind": "category_cap",
                     "max_items": 3},
    "category_cap_named": {"rule_id": "max-2-books", "kind": "category_cap",
                           "categories": ["Books"], "max_items": 2},
    "price_range": {"rule_id": "under-500", "kind": "price_range", "max_price": 500,
                    "keep_unpriced": False},
    "exclude_purchased": {"rule_id": "bought-recently", "kind": "exclude_purchased",
                          "days": 30},
}
DECODED = {
    "exclude_items": ExcludeItems(rule_id="recalled-batch-7", items=("sku-1001", "sku-1002"),
                                  note="Recall notice 2026-11"),
    "exclude_items_for_user": ExcludeItems(rule_id="u-4711-no-ladders", items=("sku-77",),
                                           user_id="u-4711"),
    "exclude_categories": ExcludeCategories(rule_id="no-alcohol",
                                            categories=("Wine", "Spirits")),
    "boost": Boost(rule_id="apera-promo", brands=("Apera",), categories=("pH meters",),
                   factor=1.5),
    "category_cap": CategoryCap(rule_id="max-3-per-category", max_items=3),
    "category_cap_named": CategoryCap(rule_id="max-2-books", categories=("Books",),
                                      max_items=2),
    "price_range": PriceRange(rule_id="under-500", max_price=500.0, keep_unpriced=False),
    "exclude_purchased": ExcludePurchased(rule_id="bought-recently", days=30.0),
}


def record(rule: dict[str, Any]) -> tuple[bytes, bytes]:
    return rule["rule_id"].encode(), orjson.dumps(rule)


def test_the_schema_is_valid_draft_07_and_documented() -> None:
    schema = load_schema("rule")
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$id"].endswith("/rule.schema.json")
    assert schema["title"] and len(schema["description"]) > 50
    assert schema["properties"]["schema_version"]["const"] == contract.SCHEMA_VERSION
    assert all(p.get("description") for p in schema["properties"].values())


def test_the_kinds_match_the_python_code() -> None:
    schema = load_schema("rule")
    assert schema["properties"]["kind"]["enum"] == [k.value for k in RuleKind]
    branches = [b["if"]["properties"]["kind"]["const"] for b in schema["allOf"]]
    assert branches == [k.value for k in RuleKind]
    kinds = {type(rule).kind for rule in DECODED.values()}
    assert kinds == set(RuleKind)


def test_the_example_file_is_valid_and_decodes() -> None:
    document = orjson.loads(
        resources.files("schemas").joinpath("examples/rule.json").read_bytes())
    RULE_SCHEMA.validate(document)
    rule = decode_rule(*record(document))
    assert rule == Boost(rule_id="boost-apera-meters", categories=("pH meters",),
                         brands=("Apera",), factor=1.5, note="Apera promotion, December")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_kind_decodes_and_round_trips(name: str) -> None:
    RULE_SCHEMA.validate(EXAMPLES[name])
    rule = decode_rule(*record(EXAMPLES[name]))
    assert rule == DECODED[name]
    encoded = encode_rule(DECODED[name])
    RULE_SCHEMA.validate(orjson.loads(encoded))
    assert decode_rule(EXAMPLES[name]["rule_id"].encode(), encoded) == rule


def test_enabled_defaults_to_true_and_null_note_and_user_mean_absent() -> None:
    rule = rule_from_json({"rule_id": "x", "kind": "exclude_items", "items": ["a"],
                           "user_id": None, "note": None, "schema_version": "1"})
    assert rule == ExcludeItems(rule_id="x", items=("a",))
    assert rule_from_json({**EXAMPLES["boost"], "enabled": False}).enabled is False  # type: ignore[union-attr]


def test_a_tombstone_removes_the_rule_named_by_the_key() -> None:
    assert decode_rule(b"no-alcohol", None) == RuleRemoved("no-alcohol")


def test_boost_factors_at_the_bounds_are_accepted() -> None:
    for factor in (0.1, 10, 1):
        rule = rule_from_json({**EXAMPLES["boost"], "factor": factor})
        assert isinstance(rule, Boost) and rule.factor == float(factor)


def bad(**changes: Any) -> bytes:
    """The boost example with fields changed (None: removed)."""
    rule = {**EXAMPLES["boost"], **changes}
    return orjson.dumps({k: v for k, v in rule.items() if v is not None})


KEY = b"apera-promo"


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (None, None, RejectReason.KEY_MISMATCH),
        (b"not an id", None, RejectReason.KEY_MISMATCH),
        (b"\xff", None, RejectReason.KEY_MISMATCH),
        (KEY, b"", RejectReason.EMPTY_PAYLOAD),
        (KEY, b"  \n", RejectReason.EMPTY_PAYLOAD),
        (KEY, b"\xff\xfe", RejectReason.NOT_UTF8),
        (KEY, b"{nope", RejectReason.INVALID_JSON),
        (KEY, b"[1]", RejectReason.NOT_AN_OBJECT),
        (KEY, b'"boost"', RejectReason.NOT_AN_OBJECT),
        (KEY, bad(rule_id=None), RejectReason.MISSING_FIELD),
        (KEY, bad(kind=None), RejectReason.MISSING_FIELD),
        (KEY, bad(factor=None), RejectReason.MISSING_FIELD),
        (KEY, bad(brands=None, categories=None), RejectReason.MISSING_FIELD),
        (KEY, orjson.dumps({"rule_id": "apera-promo", "kind": "exclude_items"}),
         RejectReason.MISSING_FIELD),
        (KEY, orjson.dumps({"rule_id": "apera-promo", "kind": "exclude_categories"}),
         RejectReason.MISSING_FIELD),
        (KEY, orjson.dumps({"rule_id": "apera-promo", "kind": "category_cap"}),
         RejectReason.MISSING_FIELD),
        (KEY, orjson.dumps({"rule_id": "apera-promo", "kind": "price_range"}),
         RejectReason.MISSING_FIELD),
        (KEY, orjson.dumps({"rule_id": "apera-promo", "kind": "exclude_purchased"}),
         RejectReason.MISSING_FIELD),
        (KEY, bad(factor="2"), RejectReason.WRONG_TYPE),
        (KEY, bad(brands="Apera"), RejectReason.WRONG_TYPE),
        (KEY, bad(enabled="yes"), RejectReason.WRONG_TYPE),
        (KEY, bad(rule_id=7), RejectReason.WRONG_TYPE),
        (KEY, bad(note=5), RejectReason.WRONG_TYPE),
        (KEY, orjson.dumps({**EXAMPLES["exclude_items"], "rule_id": "apera-promo",
                            "user_id": 5}), RejectReason.WRONG_TYPE),
        (KEY, orjson.dumps({**EXAMPLES["category_cap"], "rule_id": "apera-promo",
                            "max_items": 2.5}), RejectReason.WRONG_TYPE),
        (KEY, orjson.dumps({**EXAMPLES["exclude_purchased"], "rule_id": "apera-promo",
                            "days": True}), RejectReason.WRONG_TYPE),
        (b"has space", bad(rule_id="has space"), RejectReason.INVALID_ID),
        (KEY, bad(rule_id="-leading-dash"), RejectReason.INVALID_ID),
        (KEY, bad(rule_id="x" * 129), RejectReason.INVALID_ID),
        (KEY, bad(rule_id=""), RejectReason.INVALID_ID),
        (KEY, orjson.dumps({**EXAMPLES["exclude_items"], "rule_id": "apera-promo",
                            "user_id": ""}), RejectReason.INVALID_ID),
        (KEY, orjson.dumps({**EXAMPLES["exclude_items"], "rule_id": "apera-promo",
                            "items": ["ok", "tab\there"]}), RejectReason.INVALID_ID),
        (KEY, orjson.dumps({**EXAMPLES["exclude_items"], "rule_id": "apera-promo",
                            "items": ["x" * 257]}), RejectReason.INVALID_ID),
        (KEY, bad(kind="promote"), RejectReason.SCHEMA_VIOLATION),
        (KEY, bad(factor=0.05), RejectReason.SCHEMA_VIOLATION),
        (KEY, bad(factor=10.5), RejectReason.SCHEMA_VIOLATION),
        (KEY, bad(factor=-1), RejectReason.SCHEMA_VIOLATION),
        (KEY, bad(brands=[]), RejectReason.SCHEMA_VIOLATION),
        (KEY, bad(brands=[""]), RejectReason.SCHEMA_VIOLATION),
        (KEY, bad(user_id="u-1"), RejectReason.SCHEMA_VIOLATION),  # not a boost field
        (KEY, bad(facter=2.0), RejectReason.SCHEMA_VIOLATION),  # a typo is not ignored
        (KEY, bad(schema_version="2"), RejectReason.SCHEMA_VIOLATION),
        (KEY, bad(note="x" * 1001), RejectReason.SCHEMA_VIOLATION),
        (KEY, orjson.dumps({**EXAMPLES["exclude_items"], "rule_id": "apera-promo",
                            "items": []}), RejectReason.SCHEMA_VIOLATION),
        (KEY, orjson.dumps({**EXAMPLES["category_cap"], "rule_id": "apera-promo",
                            "max_items": 0}), RejectReason.SCHEMA_VIOLATION),
        (KEY, orjson.dumps({"rule_id": "apera-promo", "kind": "price_range",
                            "min_price": 50, "max_price": 10}), RejectReason.SCHEMA_VIOLATION),
        (KEY, orjson.dumps({"rule_id": "apera-promo", "kind": "price_range",
                            "min_price": -1}), RejectReason.SCHEMA_VIOLATION),
        (KEY, orjson.dumps({**EXAMPLES["exclude_purchased"], "rule_id": "apera-promo",
                            "days": 0}), RejectReason.SCHEMA_VIOLATION),
        (KEY, orjson.dumps({**EXAMPLES["exclude_purchased"], "rule_id": "apera-promo",
                            "days": 4000}), RejectReason.SCHEMA_VIOLATION),
        (b"other", bad(), RejectReason.KEY_MISMATCH),
        (None, bad(), RejectReason.KEY_MISMATCH),
        (KEY, bad(note="x" * 900) + b" " * 1_048_576, RejectReason.OVERSIZED_PAYLOAD),
    ],
)
def test_bad_records_are_rejected_with_their_reason(
    key: bytes | None, value: bytes | None, reason: RejectReason
) -> None:
    outcome = decode_rule(key, value)
    assert isinstance(outcome, Rejection), outcome
    assert outcome.reason == reason, outcome.detail
    assert outcome.detail


def test_rejections_say_what_to_fix() -> None:
    detail = rule_from_json({**EXAMPLES["boost"], "user_id": "u-1"}).detail  # type: ignore[union-attr]
    assert "'user_id' not allowed in a boost rule" in detail
    detail = rule_from_json({"rule_id": "p", "kind": "price_range"}).detail  # type: ignore[union-attr]
    assert "needs at least one of: min_price, max_price" in detail


def test_the_rule_id_pattern_is_the_schemas() -> None:
    rule_id = load_schema("rule")["properties"]["rule_id"]
    pattern = re.compile(rule_id["pattern"])
    for sample in ["promo", "a", "A.b_c:d-1", "x" * 128, "x" * 129, "", "-x", "a b", "ü",
                   "a\n", "9lives"]:
        in_schema = (rule_id["minLength"] <= len(sample) <= rule_id["maxLength"]
                     and pattern.match(sample) is not None)
        assert in_schema == (RULE_ID_PATTERN.fullmatch(sample) is not None), sample


FIELD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5000), st.floats(-1, 20, allow_nan=False),
    st.text(max_size=5), st.lists(st.text(max_size=4), max_size=3),
)
FIELDS = ["rule_id", "kind", "enabled", "note", "items", "user_id", "categories", "brands",
          "factor", "max_items", "min_price", "max_price", "keep_unpriced", "days",
          "schema_version", "other"]


@settings(max_examples=600, deadline=None)
@given(base=st.sampled_from(sorted(EXAMPLES)),
       changes=st.dictionaries(st.sampled_from(FIELDS), FIELD_VALUES, max_size=3),
       drop=st.lists(st.sampled_from(FIELDS), max_size=2))
def test_the_codec_accepts_exactly_what_the_schema_accepts(
    base: str, changes: dict[str, Any], drop: list[str]
) -> None:
    data = {**EXAMPLES[base], **changes}
    for name in drop:
        data.pop(name, None)
    outcome = rule_from_json(data)
    schema_ok = RULE_SCHEMA.is_valid(data)
    beyond_schema = (data.get("kind") == "price_range" and schema_ok
                     and isinstance(data.get("min_price"), int | float)
                     and isinstance(data.get("max_price"), int | float)
                     and data["min_price"] > data["max_price"])
    assert isinstance(outcome, Rejection) == (not schema_ok or beyond_schema), (data, outcome)
    if not isinstance(outcome, Rejection):
        assert RULE_SCHEMA.is_valid(outcome.to_json_dict())
        assert rule_from_json(outcome.to_json_dict()) == outcome


def test_the_settings_list_is_parsed_with_distinct_ids() -> None:
    text = orjson.dumps(list(EXAMPLES.values())).decode()
    assert parse_rule_list(text) == tuple(DECODED[name] for name in EXAMPLES)
    assert parse_rule_list("[]") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{nope", "not JSON"),
        ('{"rule_id": "x"}', "expected a JSON array"),
        ("[1]", "rule 0 (None): not_an_object"),
        ('[{"rule_id": "a", "kind": "exclude_purchased", "days": 1}, '
         '{"rule_id": "b", "kind": "boost", "brands": ["X"], "factor": 11}]',
         "rule 1 ('b'): schema_violation: factor"),
        ('[{"rule_id": "a", "kind": "exclude_purchased", "days": 1}, '
         '{"rule_id": "a", "kind": "exclude_purchased", "days": 2}]',
         "rule 1: rule_id 'a' appears twice"),
    ],
)
def test_a_bad_settings_list_names_the_rule_and_the_fault(text: str, message: str) -> None:
    with pytest.raises(InvalidRuleError, match=re.escape(message)):
        parse_rule_list(text)


def test_no_new_reject_reason_is_needed() -> None:
    assert load_schema("dead_letter")["properties"]["reason"]["enum"] == [
        r.value for r in RejectReason]


def test_the_docstring_examples_run() -> None:
    result = doctest.testmod(schemas.rules)
    assert result.attempted > 0 and result.failed == 0
