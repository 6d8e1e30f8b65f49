"""Nearest items by text: inner-product search over unit vectors (= cosine similarity).

Two kinds of faiss index behind one class, chosen by the catalogue's size:

* up to :data:`EXACT_UP_TO` items, exact search (``IndexFlatIP``): recall 1, and cheap at
  that size;
* above it, an HNSW graph (``IndexHNSWFlat``, inner product): a query visits a few hundred
  vectors instead of all of them. Measured at 10,000 items of 512 dimensions on this 2-core
  machine (``python -m devtools.index_bench``): see README "Content retrieval".

Neither supports cheap true deletion (HNSW none at all), so removal is lazy: a removed or
replaced item's row is marked dead and filtered out of every answer, searches ask for
enough extra rows to cover the dead ones, and once dead rows pass a quarter of the index it
is rebuilt from the live vectors. A row whose filtered answer came back short (many dead
neighbours) is answered by exact search over the live vectors instead, so an answer never
holds fewer items than exact search would give.

Not thread-safe by itself: :class:`~streams.catalog.catalog.Catalog` serialises writers and
readers with one lock, and builds a replacement index outside it (:meth:`ContentIndex.rebuilt`)
so searches are not held up while a large graph is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import faiss
import numpy as np
import numpy.typing as npt

EXACT_UP_TO: Final = 1024
"""Largest catalogue searched exactly; above it, the HNSW graph."""
HNSW_NEIGHBOURS: Final = 32
HNSW_EF_CONSTRUCTION: Final = 64
HNSW_EF_SEARCH: Final = 128
DEAD_SHARE_REBUILD: Final = 0.25
"""Rebuild once this share of the rows are dead (and at least :data:`DEAD_MIN_REBUILD`)."""
DEAD_MIN_REBUILD: Final = 256


class ContentIndex:
    """Live items, their vectors, and a faiss index over them (rows may be dead)."""

    def __init__(self, dimensions: int, *, exact_up_to: int = EXACT_UP_TO,
                 ef_search: int = HNSW_EF_SEARCH) -> None:
        # One thread: searches run on the worker's scoring thread, beside the event loop on
        # a small machine; faiss' OpenMP pool would spin against both (measured: 10x slower
        # per query on two busy cores).
        faiss.omp_set_num_threads(1)
        self.dimensions = dimensions
        self.exact_up_to = exact_up_to
        self.ef_search = ef_search
        self._rows: dict[str, int] = {}
        """Live item -> its row in the faiss index (whose storage keeps the only copy of
        the vectors: :meth:`_live_vectors` reads them back)."""
        self._items: list[str | None] = []
        self._dead = 0
        self._index: Any = self._new_index(0)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    @property
    def kind(self) -> str:
        """``exact`` or ``hnsw``."""
        return "hnsw" if isinstance(self._index, faiss.IndexHNSWFlat) else "exact"

    def upsert(self, items: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        """Add items, replacing the vectors of those already indexed."""
        if not items:
            return
        self.remove(item for item in items if item in self._rows)
        block = np.ascontiguousarray(vectors, dtype=np.float32)
        first = len(self._items)
        for offset, item in enumerate(items):
            self._rows[item] = first + offset
            self._items.append(item)
        self._index.add(block)

    def remove(self, items: Iterable[str]) -> None:
        for item in items:
            row = self._rows.pop(item, None)
            if row is not None:
                self._items[row] = None
                self._dead += 1

    def needs_rebuild(self) -> bool:
        """Too many dead rows, or the catalogue crossed the exact/HNSW boundary."""
        rows = len(self._items)
        too_dead = self._dead >= max(DEAD_MIN_REBUILD, DEAD_SHARE_REBUILD * rows)
        grown = self.kind == "exact" and len(self) > self.exact_up_to
        shrunk = self.kind == "hnsw" and len(self) <= self.exact_up_to // 2  # hysteresis
        return too_dead or grown or shrunk

    def rebuilt(self) -> ContentIndex:
        """A fresh index of the live items only (call it without holding the catalogue's
        lock: building a large graph takes a while; the items and vectors are copied first)."""
        fresh = ContentIndex(self.dimensions, exact_up_to=self.exact_up_to,
                             ef_search=self.ef_search)
        items, vectors = self._live_vectors()
        fresh._index = fresh._new_index(len(items))
        if items:
            fresh.upsert(items, vectors)
        return fresh

    def search(self, queries: npt.NDArray[np.float32], k: int
               ) -> list[list[tuple[str, float]]]:
        """Per query row, up to ``k`` (item_id, cosine) best first, ties by item id."""
        if not len(self) or not len(queries):
            return [[] for _ in range(len(queries))]
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        want = min(k, len(self))
        fetch = min(len(self._items), want + self._dead + max(8, want // 2))
        scores, rows = self._index.search(queries, fetch)
        items = self._items
        out = []
        for row, (row_rows, row_scores) in enumerate(zip(rows.tolist(), scores.tolist(),
                                                         strict=True)):
            found = [(items[r], float(s)) for r, s in zip(row_rows, row_scores, strict=True)
                     if r >= 0 and items[r] is not None]
            if len(found) < want:  # the graph's answer ran short: ask the live vectors
                found = self._exact(queries[row], want)
            found.sort(key=lambda pair: (-pair[1], pair[0]))
            out.append(found[:want])
        return out

    def _exact(self, query: npt.NDArray[np.float32], k: int) -> list[tuple[str, float]]:
        items, vectors = self._live_vectors()
        scores = vectors @ query
        best = np.argsort(-scores, kind="stable")[:k]
        return [(items[i], float(scores[i])) for i in best.tolist()]

    def _live_vectors(self) -> tuple[list[str], npt.NDArray[np.float32]]:
        """The live items and their vectors, read back from the index's storage."""
        items = list(self._rows)
        if not items:
            return [], np.zeros((0, self.dimensions), dtype=np.float32)
        rows = np.fromiter(self._rows.values(), dtype=np.int64, count=len(items))
        return items, self._index.reconstruct_batch(rows)

    def _new_index(self, size: int) -> Any:
        if size <= self.exact_up_to:
            return faiss.IndexFlatIP(self.dimensions)
        index = faiss.IndexHNSWFlat(self.dimensions, HNSW_NEIGHBOURS,
                                    faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = self.ef_search
        return index
