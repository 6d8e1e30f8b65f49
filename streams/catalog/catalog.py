"""The catalogue as the scoring thread sees it: which items may be recommended, what they
are about (category, text embedding), and which available items are closest in text.

The reader task writes (on the event loop), the scoring thread reads: every access takes one
lock, held only for dictionary updates and one batched index search.

Rule for what may be recommended (README "Catalogue"): while the catalogue is empty — a shop
that publishes no catalogue — every item may be; once it holds items, only items it holds
with ``available: true`` may be. So an item that was removed (tombstone) or is out of stock
never appears, from any source: model, content neighbours or trending.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from schemas.items import Item
from streams.catalog.index import ContentIndex
from streams.catalog.records import CatalogRecord


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What ranking needs of an item, without its text."""

    title: str
    available: bool
    category: tuple[str, ...]
    brand: str | None
    price: float | None
    has_text: bool


class Catalog:
    """Items by id, their embeddings, and the index of available embedded items."""

    def __init__(self, dimensions: int = 512) -> None:
        self.dimensions = dimensions
        self._lock = threading.Lock()
        self._facts: dict[str, ItemFacts] = {}
        self._vectors: dict[str, npt.NDArray[np.float32]] = {}
        self._index = ContentIndex(dimensions)

    def __len__(self) -> int:
        return len(self._facts)

    @property
    def indexed(self) -> int:
        """Items in the nearest-neighbour index (available and embedded)."""
        return len(self._index)

    def apply(self, changes: Mapping[str, CatalogRecord | None]) -> None:
        """Make the view match stored records (None: the item was removed). One writer at
        a time (the catalogue reader's thread); readers may search meanwhile."""
        upsert_ids: list[str] = []
        upsert_vectors: list[npt.NDArray[np.float32]] = []
        removed: list[str] = []
        with self._lock:
            for item_id, record in changes.items():
                if record is None:
                    self._facts.pop(item_id, None)
                    self._vectors.pop(item_id, None)
                    removed.append(item_id)
                    continue
                item, vector = record.item, record.embedding
                usable = vector is not None and bool(np.any(vector))
                self._facts[item_id] = _facts(item, usable)
                if usable and vector is not None:
                    self._vectors[item_id] = vector
                else:
                    self._vectors.pop(item_id, None)
                if usable and item.available and vector is not None:
                    upsert_ids.append(item_id)
                    upsert_vectors.append(vector)
                else:
                    removed.append(item_id)
            self._index.remove(removed)
            if upsert_ids:
                self._index.upsert(upsert_ids, np.stack(upsert_vectors))
            rebuild = self._index.needs_rebuild()
        if rebuild:
            # Built without the lock (a large graph takes seconds; searches go on meanwhile
            # on the old one). Safe because ``apply`` is the only writer: the catalogue
            # reader calls it from one thread.
            fresh = self._index.rebuilt()
            with self._lock:
                self._index = fresh

    def facts(self, item_id: str) -> ItemFacts | None:
        return self._facts.get(item_id)

    def recommendable(self, item_id: str) -> bool:
        """See the module docstring for the rule."""
        if not self._facts:
            return True
        facts = self._facts.get(item_id)
        return facts is not None and facts.available

    def keep_recommendable(self, items: Iterable[tuple[str, float]]
                           ) -> list[tuple[str, float]]:
        if not self._facts:
            return list(items)
        facts = self._facts
        return [(item, score) for item, score in items
                if (f := facts.get(item)) is not None and f.available]

    def queries(self, histories: Sequence[Sequence[str]]
                ) -> tuple[npt.NDArray[np.float32], list[bool]]:
        """One unit query vector per history: the mean of its items' embeddings, newer items
        weighing more (1, 1/2, 1/3, ... from the newest). Rows whose items have no embedding
        are zero and flagged False."""
        out = np.zeros((len(histories), self.dimensions), dtype=np.float32)
        usable = []
        with self._lock:
            vectors = self._vectors
            for row, history in enumerate(histories):
                ranks: list[int] = []
                found: list[npt.NDArray[np.float32]] = []
                for rank, item in enumerate(reversed(history), start=1):
                    vector = vectors.get(item)
                    if vector is not None:
                        ranks.append(rank)
                        found.append(vector)
                if found:  # one weighted product: half the time of a sum of scaled vectors
                    query = (1.0 / np.asarray(ranks, dtype=np.float32)) @ np.stack(found)
                    out[row] = query / max(float(np.linalg.norm(query)), 1e-12)
                usable.append(bool(found))
        return out, usable

    def nearest(self, queries: npt.NDArray[np.float32], k: int
                ) -> list[list[tuple[str, float]]]:
        """Up to ``k`` available items closest to each query row (cosine, best first)."""
        with self._lock:
            return self._index.search(queries, k)

    def similar_to(self, item_id: str, k: int) -> list[tuple[str, float]]:
        """The ``k`` available items whose text is closest to ``item_id``'s (not itself)."""
        vector = self.embeddings([item_id]).get(item_id)
        if vector is None:
            return []
        (found,) = self.nearest(vector[None, :], k + 1)
        return [(item, score) for item, score in found if item != item_id][:k]

    def embeddings(self, items: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        with self._lock:
            return {item: self._vectors[item] for item in items if item in self._vectors}


def _facts(item: Item, has_text: bool) -> ItemFacts:
    return ItemFacts(title=item.title, available=item.available, category=item.category,
                     brand=item.brand, price=item.price, has_text=has_text)
