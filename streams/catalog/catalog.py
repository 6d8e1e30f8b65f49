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
from typing import Any

import numpy as np
import numpy.typing as npt

from models.diversity import intra_list_diversity
from schemas.items import Item
from streams.catalog.index import ContentIndex
from streams.catalog.records import CatalogRecord
from streams.catalog.vectors import EmbeddingTable


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
        self._vectors = EmbeddingTable(dimensions)
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
                    self._vectors.drop(item_id)
                    removed.append(item_id)
                    continue
                item, vector = record.item, record.embedding
                usable = vector is not None and bool(np.any(vector))
                self._facts[item_id] = _facts(item, usable)
                if usable and vector is not None:
                    self._vectors.put(item_id, vector)
                else:
                    self._vectors.drop(item_id)
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
        are zero and flagged False. One gather and one padded sum for all histories."""
        out = np.zeros((len(histories), self.dimensions), dtype=np.float32)
        owners: list[int] = []
        rows: list[int] = []
        weights: list[float] = []
        with self._lock:
            table = self._vectors
            for owner, history in enumerate(histories):
                for rank, row in enumerate(table.rows(history[::-1]), start=1):
                    if row >= 0:
                        owners.append(owner)
                        rows.append(row)
                        weights.append(1.0 / rank)
            found = table.gather(rows) if rows else None
        usable = [False] * len(histories)
        if found is None:
            return out, usable
        found *= np.asarray(weights, dtype=np.float32)[:, None]
        present, sums = _segment_sums(found, owners, np.float32)
        norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        out[present] = sums / norms
        for owner in present.tolist():
            usable[owner] = True
        return out, usable

    def nearest(self, queries: npt.NDArray[np.float32], k: int
                ) -> list[list[tuple[str, float]]]:
        """Up to ``k`` available items closest to each query row (cosine, best first)."""
        with self._lock:
            return self._index.search(queries, k)

    def similar_to(self, item_id: str, k: int) -> list[tuple[str, float]]:
        """The ``k`` available items whose text is closest to ``item_id``'s (not itself)."""
        with self._lock:
            vector = self._vectors.get(item_id)
        if vector is None:
            return []
        (found,) = self.nearest(vector[None, :], k + 1)
        return [(item, score) for item, score in found if item != item_id][:k]

    def embeddings(self, items: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        present, vectors = self.vectors(items)
        return dict(zip(present, vectors, strict=True))

    def vectors(self, items: Sequence[str]) -> tuple[list[str], npt.NDArray[np.float32]]:
        """The items of ``items`` that have an embedding (in order) and their vectors."""
        with self._lock:
            return self._vectors.present(items)

    def list_diversity(self, lists: Sequence[Sequence[str]]) -> list[float | None]:
        """Per list, :func:`models.diversity.intra_list_diversity` of its items with text
        (None below two): one gather per list. (One padded block for all lists cost more
        for the few lists of a live batch, in an ad-hoc micro-benchmark.)"""
        with self._lock:
            table = self._vectors
            blocks = [table.gather(table.locate(items)[1]) for items in lists]
        return [intra_list_diversity(block) for block in blocks]

    def has_text(self, item_id: str) -> bool:
        """Whether the item has a text embedding."""
        return item_id in self._vectors

    def closest_many(self, pairs: Sequence[tuple[Sequence[str], Sequence[str]]]
                     ) -> list[dict[str, str]]:
        """For each (items, anchors) pair — the users of a micro-batch — and each of its
        items with an embedding, the anchor with an embedding whose text is closest to it
        (the first of equals): one gather and one batched matrix product for all pairs."""
        out: list[dict[str, str]] = [{} for _ in pairs]
        kept: list[tuple[int, list[str], list[str]]] = []
        item_rows: list[int] = []
        anchor_rows: list[int] = []
        with self._lock:
            table = self._vectors
            for position, (items, anchors) in enumerate(pairs):
                anchor_ids, anchor_found = table.locate(anchors)
                item_ids, item_found = table.locate(items) if anchor_ids else ([], [])
                if item_ids:
                    kept.append((position, item_ids, anchor_ids))
                    item_rows += item_found
                    anchor_rows += anchor_found
            if not kept:
                return out
            item_vectors, anchor_vectors = table.gather(item_rows), table.gather(anchor_rows)
        item_sizes = np.array([len(entry[1]) for entry in kept])
        anchor_sizes = np.array([len(entry[2]) for entry in kept])
        similarity = np.matmul(_padded_groups(item_vectors, item_sizes),
                               _padded_groups(anchor_vectors, anchor_sizes).transpose(0, 2, 1))
        real_anchor = np.arange(similarity.shape[2]) < anchor_sizes[:, None]
        similarity = np.where(real_anchor[:, None, :], similarity, -np.inf)
        best = similarity.argmax(axis=2).tolist()
        for n, (position, item_ids, anchor_ids) in enumerate(kept):
            out[position] = {item: anchor_ids[best[n][i]] for i, item in enumerate(item_ids)}
        return out


def _padded_groups(rows: npt.NDArray[np.float32], sizes: npt.NDArray[np.intp]
                   ) -> npt.NDArray[np.float32]:
    """Consecutive groups of ``rows`` (``sizes[g]`` rows each, in order) as one
    ``(groups, longest, d)`` block, short groups padded with zero rows."""
    index = np.full((len(sizes), int(sizes.max())), len(rows), dtype=np.intp)
    index[np.arange(index.shape[1]) < sizes[:, None]] = np.arange(len(rows))
    padded = np.vstack([rows, np.zeros((1, rows.shape[1]), dtype=rows.dtype)])
    return padded[index]


def _segment_sums(rows: npt.NDArray[np.float32], owners: Sequence[int],
                  dtype: type[np.floating[Any]]
                  ) -> tuple[npt.NDArray[np.intp], npt.NDArray[Any]]:
    """Sums of consecutive ``rows`` that share an owner (``owners`` non-decreasing, one per
    row): the owners present and their sums, as :func:`_padded_groups` summed along its
    middle axis: ``np.add.reduceat`` over rows took several times as long in an ad-hoc
    micro-benchmark (300 groups of 20 vectors of 512)."""
    owner_of = np.asarray(owners, dtype=np.intp)
    starts = np.flatnonzero(np.r_[True, owner_of[1:] != owner_of[:-1]])
    sizes = np.diff(np.r_[starts, len(owner_of)])
    return owner_of[starts], _padded_groups(rows, sizes).sum(axis=1, dtype=dtype)


def _facts(item: Item, has_text: bool) -> ItemFacts:
    return ItemFacts(title=item.title, available=item.available, category=item.category,
                     brand=item.brand, price=item.price, has_text=has_text)
