"""Decode catalogue records from the ``items`` topic: the Python side of
``item.schema.json``.

A record is an :class:`Item` (the item's current version), an :class:`ItemRemoved` (a
tombstone: null value, the key names the item) or a :class:`~schemas.events.Rejection` with a
stable reason, bound for the dead-letter topic. :func:`decode_item` never raises on input.

>>> raw = b'{"item_id": "sku-1", "title": "pH meter", "category": ["Lab", "Meters"]}'
>>> item = decode_item(b"sku-1", raw)
>>> item.item_id, item.available, item.category
('sku-1', True, ('Lab', 'Meters'))
>>> decode_item(b"sku-1", None)
ItemRemoved(item_id='sku-1')
>>> decode_item(b"sku-2", raw).reason
<RejectReason.KEY_MISMATCH: 'key_mismatch'>
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import fastjsonschema
import orjson

from schemas.contract import compile_schema, field_name, is_valid_id, short
from schemas.events import Rejection
from schemas.keyed import keyed_json
from schemas.reasons import RejectReason
from schemas.timestamps import parse_rfc3339_ms

DEFAULT_MAX_ITEM_BYTES: Final = 65_536
_validate_item = compile_schema("item")


@dataclass(frozen=True, slots=True)
class Item:
    """One catalogue item, validated. ``category`` is the path, root first."""

    item_id: str
    title: str
    description: str | None = None
    category: tuple[str, ...] = ()
    brand: str | None = None
    price: float | None = None
    currency: str | None = None
    available: bool = True
    updated_at_ms: int | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The canonical JSON form (absent optionals omitted); :func:`decode_item` reads it."""
        out: dict[str, Any] = {"schema_version": "1", "item_id": self.item_id,
                               "title": self.title, "available": self.available}
        optional = {"description": self.description, "brand": self.brand,
                    "price": self.price, "currency": self.currency,
                    "updated_at": self.updated_at_ms,
                    "category": list(self.category) if self.category else None}
        out.update({key: value for key, value in optional.items() if value is not None})
        return out


@dataclass(frozen=True, slots=True)
class ItemRemoved:
    """A tombstone: the item is gone from the catalogue."""

    item_id: str


def decode_item(
    key: bytes | None, value: bytes | None, max_bytes: int = DEFAULT_MAX_ITEM_BYTES
) -> Item | ItemRemoved | Rejection:
    """One record of the items topic. Never raises on input data."""
    keyed = keyed_json(key, value, max_bytes, "item_id", is_valid_id)
    if isinstance(keyed, Rejection):
        return keyed
    item_key, data = keyed.key, keyed.data
    if data is None:
        return ItemRemoved(str(item_key))
    if not isinstance(data, dict):
        return Rejection(RejectReason.NOT_AN_OBJECT, "top level is not a JSON object")
    try:
        _validate_item(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        return _schema_rejection(data, exc)
    if item_key != data["item_id"]:
        return Rejection(RejectReason.KEY_MISMATCH,
                         f"record key {short(item_key)} is not the item_id "
                         f"{short(data['item_id'])}", None)
    updated = data.get("updated_at")
    if isinstance(updated, str):
        try:
            updated = parse_rfc3339_ms(updated)
        except ValueError as exc:
            return Rejection(RejectReason.INVALID_TIMESTAMP, f"updated_at: {exc}")
    price = data.get("price")
    return Item(
        item_id=data["item_id"],
        title=data["title"],
        description=data.get("description"),
        category=tuple(data.get("category") or ()),
        brand=data.get("brand"),
        price=None if price is None else float(price),
        currency=data.get("currency"),
        available=data.get("available", True),
        updated_at_ms=updated,
    )


def encode_item(item: Item) -> bytes:
    """An item as its record value (what a producer would write)."""
    return orjson.dumps(item.to_json_dict())


def _schema_rejection(data: dict[str, Any], exc: fastjsonschema.JsonSchemaValueException
                      ) -> Rejection:
    where = field_name(exc)
    if exc.rule == "required":
        missing = sorted(set(exc.rule_definition) - data.keys())
        return Rejection(RejectReason.MISSING_FIELD,
                         f"missing required field(s): {', '.join(missing)}")
    if exc.rule == "type":
        return Rejection(RejectReason.WRONG_TYPE, f"{where}: {exc.message}"[:500])
    if where == "item_id":
        return Rejection(RejectReason.INVALID_ID,
                         "item_id must be 1-256 characters without control characters")
    if where == "updated_at":
        return Rejection(RejectReason.INVALID_TIMESTAMP, f"updated_at: {exc.message}"[:500])
    return Rejection(RejectReason.SCHEMA_VIOLATION, f"{where or 'item'}: {exc.message}"[:500])
