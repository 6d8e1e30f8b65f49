"""Retrieval, then ranking: an approximate nearest-neighbour index over a model's item
vectors, and the exact re-scoring of what it retrieves.

A model directory's retrieval pair (``models.onnx_contract``) factors the model's score as
``score(user, item) = session(user) . item_vectors[item] + item_bias[item]``. Instead of
computing that for every item, :class:`Retriever` asks a faiss HNSW graph for the
``candidates`` items with the highest score, re-scores exactly those with float32 dot products
and ranks them with the rule of ``models.protocol.top_k`` (higher score first, equal scores by
lower item index). Index 0 (padding/OOV) is never indexed, so never retrieved.

The search is a maximum-inner-product search, and the graph is built with faiss's
inner-product metric for every architecture: ``sessattn`` scores a scaled cosine (unit item
vectors), ``gru4rec``/``sasrec`` raw dot products of vectors of unequal length. Per-item
offsets, when a model has any, become one more dimension (item ``[x, b]``, query
``[q, 1]``). The classic reduction of inner product to L2 (one extra dimension
``sqrt(R^2 - |x|^2)``) was measured and dropped: on the seeded tables of
``tests/models/test_retrieval.py`` (3,000 items in 60 clusters, lengths varying 4x, 50
candidates) it kept 94 % of the exact top-20 (82 % with offsets) where the inner-product
graph keeps 99 % (98 %).

Exact duplicates among the item vectors (e.g. many all-zero rows) are a weak spot of HNSW:
the graph may leave some of them unreachable. When ``candidates`` covers the catalogue the
index is not asked at all: every item is a candidate, so the ranking is exact.

faiss runs on one OpenMP thread (process-wide, as ``streams.catalog.index`` sets it): the
search runs on the worker's scoring thread beside the event loop. With one thread the graph is
built deterministically (faiss draws node levels from a fixed seed), so a model directory
always gets the same index. When ONNX Runtime scores on CUDA and the installed faiss is a GPU
build (``faiss.StandardGpuResources``; the ``faiss-cpu`` wheel on PyPI is not), the search is
an exact flat search on the GPU instead (faiss GPU has no HNSW); otherwise the CPU graph.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from models.errors import InvalidInputError
from models.protocol import top_k

logger = logging.getLogger(__name__)

DEFAULT_CANDIDATES = 50
"""Items retrieved per user and re-scored exactly (see docs/performance.md, "Retrieval, then
ranking", for the accuracy and cost of other values)."""

AUTO_MIN_ITEMS = 5_000
"""``retrieval="auto"`` serves catalogues at least this large through the index. A judgement,
not a measurement: a smaller catalogue is cheap to score whole (under an eighth of
Diginetica's 43k items), so the approximation would buy little."""

HNSW_M = 32
"""Neighbours per node of the HNSW graph."""

EF_CONSTRUCTION = 80
"""Search breadth while building the graph."""


@dataclass(frozen=True)
class AnnSettings:
    """How the index is built and searched."""

    candidates: int = DEFAULT_CANDIDATES  # items retrieved per user, then re-scored exactly
    ef_search: int | None = None  # HNSW search breadth; None: = candidates (never below it)
    m: int = HNSW_M  # HNSW neighbours per node
    ef_construction: int = EF_CONSTRUCTION  # HNSW build breadth

    def __post_init__(self) -> None:
        if self.candidates < 1 or self.m < 2 or self.ef_construction < 1:
            raise InvalidInputError(f"invalid ANN settings {self}")
        if self.ef_search is not None and self.ef_search < 1:
            raise InvalidInputError(f"ef_search must be positive, got {self.ef_search}")

    @property
    def breadth(self) -> int:
        """The HNSW ``efSearch`` used: at least the number of candidates."""
        return max(self.candidates, self.ef_search or 0)


def faiss_gpu_available() -> bool:
    """Whether the installed faiss is a GPU build that sees a GPU."""
    return hasattr(faiss, "StandardGpuResources") and int(faiss.get_num_gpus()) > 0


class ItemIndex:
    """A faiss index over item rows ``1..n`` of ``vectors`` (see the module doc); search
    answers item indices, ``-1`` where fewer items exist than asked for."""

    def __init__(
        self, vectors: npt.NDArray[np.float32], bias: npt.NDArray[np.float32] | None,
        settings: AnnSettings, use_gpu: bool = False,
    ) -> None:
        faiss.omp_set_num_threads(1)
        started = time.perf_counter()
        items = np.ascontiguousarray(vectors[1:], dtype=np.float32)  # (N, d)
        self.dim = int(items.shape[1])
        offsets = None if bias is None or not np.any(bias[1:] != 0.0) else bias[1:]
        if offsets is not None:  # score = [q, 1] . [x, b]
            items = np.ascontiguousarray(np.hstack([items, offsets[:, None]]), dtype=np.float32)
        self.has_bias = offsets is not None
        self.n_items = len(items)
        self.device = "cuda" if use_gpu else "cpu"
        self._gpu_resources: Any = None
        self._index: Any
        metric = faiss.METRIC_INNER_PRODUCT
        if use_gpu:
            self._gpu_resources = faiss.StandardGpuResources()
            flat = faiss.IndexFlat(items.shape[1], metric)
            self._index = faiss.index_cpu_to_gpu(self._gpu_resources, 0, flat)
        else:
            self._index = faiss.IndexHNSWFlat(items.shape[1], settings.m, metric)
            self._index.hnsw.efConstruction = settings.ef_construction
            self._index.hnsw.efSearch = settings.breadth
        if len(items):
            self._index.add(items)
        self.build_seconds = time.perf_counter() - started
        logger.info(
            "item index: %d items%s, %s, built in %.2f s",
            self.n_items, " with offsets" if self.has_bias else "",
            "exact flat search on the GPU" if use_gpu
            else f"HNSW M={settings.m} efConstruction={settings.ef_construction} "
                 f"efSearch={settings.breadth}",
            self.build_seconds,
        )

    def nbytes(self) -> int | None:
        """Size of the index serialised (vectors and graph), or None on the GPU."""
        if self.device != "cpu":
            return None
        return int(faiss.serialize_index(self._index).nbytes)

    def search(self, queries: npt.NDArray[np.float32], n: int) -> npt.NDArray[np.int64]:
        """Item indices ``(B, n)`` of the (approximately) best-scoring items per query row,
        ``-1`` where there are none; in no particular order of ties."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)  # (B, d)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InvalidInputError(f"queries of shape {queries.shape}, expected (B, {self.dim})")
        if self.has_bias:
            ones = np.ones((len(queries), 1), dtype=np.float32)
            queries = np.ascontiguousarray(np.hstack([queries, ones]))
        width = min(n, self.n_items)
        if width == 0 or not len(queries):
            return np.full((len(queries), n), -1, dtype=np.int64)
        _, found = self._index.search(queries, width)  # (B, width) faiss ids, -1: none
        found = found.astype(np.int64)
        found[found >= 0] += 1  # faiss id i is item index i + 1
        if width < n:
            found = np.hstack([found, np.full((len(queries), n - width), -1, dtype=np.int64)])
        return found


class Retriever:
    """Candidates from the :class:`ItemIndex`, re-scored exactly and ranked; the exact
    score table for the rows where too few candidates survive the exclusions."""

    def __init__(
        self, vectors: npt.NDArray[np.float32], bias: npt.NDArray[np.float32] | None,
        settings: AnnSettings | None = None, use_gpu: bool = False,
    ) -> None:
        self.settings = settings or AnnSettings()
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (N + 1, d)
        self.bias = None if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
        self.n_items = len(vectors) - 1
        self.index = ItemIndex(self.vectors, self.bias, self.settings, use_gpu)
        self.fallback_rows = 0
        """Rows ranked by the exact table so far (too few candidates after exclusions)."""

    def exact_scores(self, queries: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Scores ``(B, n_items + 1)`` of every item, column 0 ``-inf``."""
        scores = queries @ self.vectors.T  # (B, N + 1)
        if self.bias is not None:
            scores += self.bias
        scores[:, 0] = -np.inf
        return scores

    def candidate_scores(
        self, queries: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """``(items (B, C), scores (B, C))``: the retrieved item indices (``-1``: none) and
        their exact scores (``-inf`` for none), unordered."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)  # (B, d)
        if self.settings.candidates >= self.n_items:  # every item: no index needed
            every = np.arange(1, self.n_items + 1, dtype=np.int64)
            items = np.broadcast_to(every, (len(queries), self.n_items)).copy()  # (B, N)
        else:
            items = self.index.search(queries, self.settings.candidates)  # (B, C)
        rows = self.vectors[np.maximum(items, 0)]  # (B, C, d)
        scores = np.einsum("bcd,bd->bc", rows, queries)  # (B, C), no BLAS threads
        if self.bias is not None:
            scores += self.bias[np.maximum(items, 0)]
        scores[items < 0] = -np.inf
        return items, scores

    def top(
        self, queries: npt.NDArray[np.float32], k: int,
        excluded: Sequence[Sequence[int]] | None = None,
    ) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        """Per query row, ``(item indices, scores)`` of at most ``k`` items, best first by the
        ``top_k`` rule, never an excluded item, index 0 nor a ``-inf``/NaN score. A row left
        with fewer than ``k`` candidates after its exclusions is ranked over the exact table
        instead, so the index never returns fewer items than exact ranking would."""
        if k <= 0:
            raise InvalidInputError(f"k must be positive, got {k}")
        items, scores = self.candidate_scores(queries)  # (B, C)
        rows = np.arange(len(items), dtype=np.int64)[:, None]  # (B, 1)
        if excluded is not None and any(len(row) for row in excluded):
            width = self.n_items + 1
            pairs = np.unique(np.fromiter(  # sorted row * width + item of every exclusion
                (r * width + int(i) for r, row in enumerate(excluded) for i in row),
                dtype=np.int64,
            ))
            keys = rows * width + items  # (B, C)
            at = np.minimum(np.searchsorted(pairs, keys), len(pairs) - 1)
            scores[(pairs[at] == keys) & (items >= 0)] = -np.inf
        scores[np.isnan(scores)] = -np.inf
        order = np.lexsort((items, -scores), axis=-1)[:, :k]  # (B, k) score, then index
        items, scores = items[rows, order], scores[rows, order]
        valid = scores > -np.inf  # (B, k)
        out = [(items[r][valid[r]], scores[r][valid[r]]) for r in range(len(items))]
        short = np.flatnonzero(valid.sum(axis=1) < k).tolist()
        if short:
            self.fallback_rows += len(short)
            out_short = self._exact_top(
                queries[short], k, None if excluded is None else [excluded[r] for r in short]
            )
            for r, ranked in zip(short, out_short, strict=True):
                out[r] = ranked
        return out

    def _exact_top(
        self, queries: npt.NDArray[np.float32], k: int,
        excluded: Sequence[Sequence[int]] | None,
    ) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        scores = self.exact_scores(queries)  # (B, N + 1)
        top = top_k(scores, min(k, self.n_items), excluded)  # (B, k)
        out = []
        for r, row in enumerate(top):
            row_scores = scores[r, row]
            keep = row_scores > -np.inf
            if excluded is not None:
                keep &= ~np.isin(row, np.asarray(excluded[r], dtype=np.int64))
            out.append((row[keep].astype(np.int64), row_scores[keep]))
        return out
