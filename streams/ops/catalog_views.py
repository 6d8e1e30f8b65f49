"""``/items/{item_id}``: one item as this worker's catalogue holds it, with its nearest
items by text — for checking what the shop published arrived, and why items are called
similar."""

from __future__ import annotations

import dataclasses
from typing import Any

from streams.catalog.reader import CatalogReader

NEIGHBOURS = 5


def catalog_status(reader: CatalogReader) -> dict[str, Any]:
    """The catalogue part of ``/readyz``."""
    return {
        "items": len(reader.catalog),
        "indexed": reader.catalog.indexed,
        "caught_up": reader.caught_up,
        "text_encoder": reader.encoder_error or ("loaded" if reader.encoder else "loading"),
    }


def register_catalog_views(app: Any, reader: CatalogReader) -> None:
    catalog = reader.catalog

    @app.page("/items/{item_id}")
    async def item(self: Any, request: Any, item_id: str) -> Any:
        facts = catalog.facts(item_id)
        if facts is None:
            return self.json({"error": "unknown item", "item_id": item_id}, status=404)
        similar = [
            {"item_id": other, "similarity": round(score, 4),
             "title": (f.title if (f := catalog.facts(other)) else None)}
            for other, score in catalog.similar_to(item_id, NEIGHBOURS)
        ]
        return self.json({"item_id": item_id, **dataclasses.asdict(facts),
                          "recommendable": catalog.recommendable(item_id),
                          "similar": similar})
