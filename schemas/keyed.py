"""The first steps of decoding a record of a compacted topic (``items``, ``rules``): the key
names the record, a null value removes it, the value is one JSON document. What comes after
(the schema, the key matching the id inside) is each message's own codec.

>>> import re
>>> ids = re.compile(r"[a-z-]+").fullmatch
>>> keyed_json(b"sku-a", b'{"x": 1}', 100, "item_id", ids)
KeyedJson(key='sku-a', data={'x': 1})
>>> keyed_json(b"sku-a", None, 100, "item_id", ids)
KeyedJson(key='sku-a', data=None)
>>> keyed_json(None, None, 100, "item_id", ids).reason
<RejectReason.KEY_MISMATCH: 'key_mismatch'>
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.events import Rejection
from schemas.reasons import RejectReason


@dataclass(frozen=True, slots=True)
class KeyedJson:
    key: str | None
    """The record key as text when it is a valid id, else None."""
    data: Any
    """The decoded JSON value; None for a tombstone (then ``key`` is set)."""


def keyed_json(key: bytes | None, value: bytes | None, max_bytes: int, id_name: str,
               valid_id: Callable[[str], object]) -> KeyedJson | Rejection:
    """Decode ``key`` and ``value`` up to the JSON document; never raises on input data."""
    text_key = _key(key, valid_id)
    if value is None:
        if text_key is None:
            return Rejection(RejectReason.KEY_MISMATCH,
                             f"a tombstone (null value) needs the {id_name} as its key")
        return KeyedJson(text_key, None)
    if len(value) > max_bytes:
        return Rejection(RejectReason.OVERSIZED_PAYLOAD,
                         f"value is {len(value)} bytes, the limit is {max_bytes}")
    if not bytes(value).strip():
        return Rejection(RejectReason.EMPTY_PAYLOAD, "record value is empty")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError as uexc:
            return Rejection(RejectReason.NOT_UTF8, f"value is not UTF-8: {uexc}")
        return Rejection(RejectReason.INVALID_JSON, f"value is not JSON: {exc}")
    return KeyedJson(text_key, data)


def _key(key: bytes | None, valid_id: Callable[[str], object]) -> str | None:
    if key is None:
        return None
    try:
        text = bytes(key).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if valid_id(text) else None
