"""Catalogue records: decoded, validated against item.schema.json, rejected with a reason."""

from __future__ import annotations

from importlib import resources
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.contract import load_schema
from schemas.events import Rejection
from schemas.items import Item, ItemRemoved, decode_item, encode_item
from schemas.reasons import RejectReason

ITEM_SCHEMA = jsonschema.Draft7Validator(load_schema("item"))


def example() -> dict[str, Any]:
    raw = resources.files("schemas").joinpath("examples/item.json").read_bytes()
    document: dict[str, Any] = orjson.loads(raw)
    return document


def test_the_example_is_valid_and_decodes() -> None:
    document = example()
    ITEM_SCHEMA.validate(document)
    item = decode_item(document["item_id"].encode(), orjson.dumps(document))
    assert isinstance(item, Item)
    assert item.category == ("Lab & Scientific", "Meters", "pH meters")
    assert item.price == 89.9 and item.currency == "EUR" and item.available
    assert item.updated_at_ms == 1_796_202_000_000


def test_available_defaults_to_true_and_nulls_mean_absent() -> None:
    item = decode_item(b"a", orjson.dumps({"item_id": "a", "title": "T", "brand": None,
                                           "category": None, "price": None}))
    assert item == Item("a", "T")


def test_a_tombstone_removes_the_item_named_by_the_key() -> None:
    assert decode_item("wörd".encode(), None) == ItemRemoved("wörd")


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (None, None, RejectReason.KEY_MISMATCH),
        (b"a", b"", RejectReason.EMPTY_PAYLOAD),
        (b"a", b"\xff\xfe", RejectReason.NOT_UTF8),
        (b"a", b"{nope", RejectReason.INVALID_JSON),
        (b"a", b"[1]", RejectReason.NOT_AN_OBJECT),
        (b"a", b'{"item_id": "a"}', RejectReason.MISSING_FIELD),
        (b"a", b'{"item_id": "a", "title": 5}', RejectReason.WRONG_TYPE),
        (b"a", b'{"item_id": "a", "title": "T", "price": -1}', RejectReason.SCHEMA_VIOLATION),
        (b"a", b'{"item_id": "a", "title": "T", "currency": "euro"}',
         RejectReason.SCHEMA_VIOLATION),
        (b"a", b'{"item_id": "a", "title": "' + b"x" * 1001 + b'"}',
         RejectReason.SCHEMA_VIOLATION),
        (b"a", b'{"item_id": "a", "title": "T", "category": "Lab"}', RejectReason.WRONG_TYPE),
        (b"a", b'{"item_id": "a", "title": "T", "updated_at": "yesterday"}',
         RejectReason.INVALID_TIMESTAMP),
        (b"a", b'{"item_id": "a", "title": "T", "updated_at": "2026-02-30T00:00:00Z"}',
         RejectReason.INVALID_TIMESTAMP),
        (b"b", b'{"item_id": "a", "title": "T"}', RejectReason.KEY_MISMATCH),
        (None, b'{"item_id": "a", "title": "T"}', RejectReason.KEY_MISMATCH),
        (b"a", b'{"item_id": "a", "title": "T", "available": "yes"}', RejectReason.WRONG_TYPE),
        (b"a", b'{"item_id": "a", "title": "' + b"x" * 70000 + b'"}',
         RejectReason.OVERSIZED_PAYLOAD),
    ],
)
def test_bad_records_are_rejected_with_their_reason(
    key: bytes | None, value: bytes | None, reason: RejectReason
) -> None:
    outcome = decode_item(key, value)
    assert isinstance(outcome, Rejection), outcome
    assert outcome.reason == reason


items = st.builds(
    Item,
    item_id=st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20),
    title=st.text(min_size=1, max_size=50),
    description=st.none() | st.text(max_size=50),
    category=st.lists(st.text(min_size=1, max_size=10), max_size=4).map(tuple),
    brand=st.none() | st.text(max_size=10),
    price=st.none() | st.floats(0, 1e6),
    currency=st.none() | st.sampled_from(["EUR", "USD", "CNY"]),
    available=st.booleans(),
    updated_at_ms=st.none() | st.integers(0, 2**41),
)


@given(items)
def test_encode_then_decode_gives_the_item_back(item: Item) -> None:
    try:
        value = encode_item(item)
    except orjson.JSONEncodeError:  # lone surrogates cannot be JSON at all
        return
    ITEM_SCHEMA.validate(orjson.loads(value))
    assert decode_item(item.item_id.encode("utf-8"), value) == item
