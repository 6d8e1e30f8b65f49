"""One stored catalogue item: what the shop published, the hash of the text it was embedded
from, and the embedding (absent while the text encoder is unavailable).

>>> from schemas.items import Item
>>> record = CatalogRecord(Item("sku-1", "pH meter"), "abc", None)
>>> CatalogRecord.from_bytes(record.to_bytes()) == record
True
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson

from schemas.items import Item
from streams.state.bounds import StateDecodeError

_HEADER: Final = struct.Struct(">BI")  # version, JSON length
_VERSION: Final = 1


def text_hash(text: str) -> str:
    """Identifies an item's text: an unchanged hash means the stored embedding is current."""
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=12).hexdigest()


@dataclass(frozen=True)
class CatalogRecord:
    item: Item
    text_hash: str
    embedding: npt.NDArray[np.float32] | None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CatalogRecord):
            return NotImplemented
        same_vector = (self.embedding is None and other.embedding is None) or (
            self.embedding is not None and other.embedding is not None
            and np.array_equal(self.embedding, other.embedding))
        return self.item == other.item and self.text_hash == other.text_hash and same_vector

    __hash__ = None  # type: ignore[assignment]

    def to_bytes(self) -> bytes:
        meta = orjson.dumps({"item": self.item.to_json_dict(), "text_hash": self.text_hash})
        vector = b"" if self.embedding is None else self.embedding.astype("<f4").tobytes()
        return _HEADER.pack(_VERSION, len(meta)) + meta + vector

    @classmethod
    def from_bytes(cls, raw: bytes) -> CatalogRecord:
        """Raises :class:`StateDecodeError` for bytes this version did not write."""
        try:
            version, length = _HEADER.unpack_from(raw)
            if version != _VERSION:
                raise StateDecodeError(f"catalogue record version {version} is unknown")
            meta = orjson.loads(raw[_HEADER.size:_HEADER.size + length])
            data = meta["item"]
            item = Item(
                item_id=data["item_id"], title=data["title"],
                description=data.get("description"),
                category=tuple(data.get("category") or ()), brand=data.get("brand"),
                price=data.get("price"), currency=data.get("currency"),
                available=data["available"], updated_at_ms=data.get("updated_at"))
            rest = raw[_HEADER.size + length:]
            embedding = np.frombuffer(rest, dtype="<f4").astype(np.float32) if rest else None
        except (struct.error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise StateDecodeError(f"catalogue record cannot be decoded: {exc}") from exc
        return cls(item, str(meta["text_hash"]), embedding)
