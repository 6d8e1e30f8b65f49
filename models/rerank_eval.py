"""Offline evaluation of the stream's ranking layer: the model's list re-ranked as the worker
does it (a simulated search's gain, maximal marginal relevance over item text), then
HR@20 and NDCG@10 beside intra-list diversity and category coverage — so the accuracy cost
or gain of each knob is visible before it is switched on.

The arithmetic is the worker's own (:mod:`models.diversity`): the pool is the model's top
``pool_size`` items, relevance is the pool order mapped to (0, 1]; a search adds the items
nearest to the query and ``weight * cosine / best cosine`` to every candidate; the final list
is chosen by MMR with ``lam``.

A search is simulated per test case from the *target* item's category text (the last words
of its category path: the shopper typed what kind of thing they want, not the item): an
upper bound on what a real search says, reported beside the same cases without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.diversity import category_coverage, intra_list_diversity, search_gains, select

K = 20


@dataclass(frozen=True)
class RerankResult:
    cases: int
    hr_at_20: float
    ndcg_at_10: float
    diversity: float
    """Mean intra-list diversity (1 - mean pairwise cosine of the list's item texts)."""
    coverage: float
    """Mean distinct categories per list, over k."""

    def as_row(self) -> dict[str, float | int]:
        return {"cases": self.cases, "hr@20": round(self.hr_at_20, 4),
                "ndcg@10": round(self.ndcg_at_10, 4), "diversity": round(self.diversity, 4),
                "coverage": round(self.coverage, 4)}


def rerank_lists(
    scores: npt.NDArray[np.float32],
    vectors: npt.NDArray[np.float32],
    *,
    lam: float,
    queries: npt.NDArray[np.float32] | None = None,
    search_weight: float = 2.0,
    pool_size: int = 2 * K,
    k: int = K,
) -> list[list[int]]:
    """Per row of ``scores`` (B, n_items + 1; column 0 is padding), the final list of item
    indices. ``vectors`` (n_items + 1, d) are unit item-text vectors (zero rows: no text);
    ``queries`` (B, d) the simulated searches (None: no search)."""
    out = []
    item_ids = np.arange(vectors.shape[0])
    for row in range(scores.shape[0]):
        ranked = np.argsort(-scores[row, 1:], kind="stable")[:pool_size] + 1
        relevance = {int(i): 1.0 - n / pool_size for n, i in enumerate(ranked)}
        if queries is not None and np.any(queries[row]):
            similarity = vectors @ queries[row]
            nearest = item_ids[1:][np.argsort(-similarity[1:], kind="stable")[:pool_size]]
            for item in nearest.tolist():
                relevance.setdefault(int(item), 0.0)
            gains = search_gains({str(i): float(similarity[i]) for i in relevance},
                                 search_weight)
            relevance = {i: r + gains[str(i)] for i, r in relevance.items()}
        candidates = sorted(relevance.items(), key=lambda pair: -pair[1])
        by_id = {str(i): vectors[i] for i, _ in candidates if np.any(vectors[i])}
        chosen = select([(str(i), r) for i, r in candidates], by_id, k=k, lam=lam)
        out.append([int(i) for i in chosen])
    return out


def evaluate_lists(
    lists: Sequence[Sequence[int]],
    targets: Sequence[int],
    vectors: npt.NDArray[np.float32],
    category_of: Callable[[int], str | None],
    k: int = K,
) -> RerankResult:
    hits = ndcg = diversity = coverage = 0.0
    diversified = 0
    for items, target in zip(lists, targets, strict=True):
        if target in items[:20]:
            hits += 1
        if target in items[:10]:
            ndcg += 1.0 / math.log2(items.index(target) + 2)
        with_text = [vectors[i] for i in items if np.any(vectors[i])]
        value = intra_list_diversity(with_text)
        if value is not None:
            diversity += value
            diversified += 1
        coverage += category_coverage([str(i) for i in items],
                                      lambda item: category_of(int(item)), k)
    n = max(len(targets), 1)
    return RerankResult(len(targets), hits / n, ndcg / n,
                        diversity / max(diversified, 1), coverage / n)


def category_texts(benchmark: Any) -> list[str | None]:
    """Per item index (0 = padding), the category part of its text (``title. category.
    brand.``), or None when the item has no text."""
    texts = benchmark.item_texts or ()
    out: list[str | None] = [None]
    for text in texts:
        parts = [part.strip() for part in (text or "").split(". ")]
        out.append(parts[1] if len(parts) > 1 and parts[1] else None)
    return out


def simulated_queries(benchmark: Any, targets: Sequence[int], encode: Any,
                      words: int = 3) -> npt.NDArray[np.float32]:
    """Per case, the embedded query a shopper would type for the target's kind of item: the
    last ``words`` words of its category path (zero row when it has none)."""
    categories = category_texts(benchmark)
    queries = [" ".join((categories[t] or "").split()[-words:]) for t in targets]
    distinct = sorted({q for q in queries if q})
    vectors = dict(zip(distinct, encode(distinct), strict=True)) if distinct else {}
    dims = next(iter(vectors.values())).shape[0] if vectors else 1
    return np.stack([vectors.get(q, np.zeros(dims, dtype=np.float32)) for q in queries])


def rerank_table(benchmark: Any, model_spec: str, lams: Sequence[float], *,
                 search: bool, device: str = "auto", batch_size: int = 256
                 ) -> list[dict[str, Any]]:
    """One row per (search on/off, lambda): HR@20, NDCG@10, diversity, coverage of the model's
    lists re-ranked as the worker does, on ``benchmark``'s test cases."""
    from models.evaluation import benchmark_item_vectors, build_recommender

    vectors = benchmark_item_vectors(benchmark)
    recommender = build_recommender(benchmark, model_spec, device, (), vectors)
    recommender.fit(benchmark.train_sessions, benchmark.n_items)
    categories = category_texts(benchmark)
    targets = list(benchmark.test_targets)
    prefixes = list(benchmark.test_prefixes)
    queries = None
    if search:
        from models.text.encoder import TextEncoder

        queries = simulated_queries(benchmark, targets, TextEncoder.load().encode)
    configs = [(with_search, lam) for with_search in ((False, True) if search else (False,))
               for lam in lams]
    lists: dict[tuple[bool, float], list[list[int]]] = {config: [] for config in configs}
    for start in range(0, len(prefixes), batch_size):
        scores = np.asarray(recommender.score(prefixes[start:start + batch_size]),
                            dtype=np.float32)
        for with_search, lam in configs:
            batch_queries = (queries[start:start + batch_size]
                             if with_search and queries is not None else None)
            lists[(with_search, lam)] += rerank_lists(scores, vectors, lam=lam,
                                                      queries=batch_queries)
    return [{"search": with_search, "lambda": lam,
             **evaluate_lists(lists[(with_search, lam)], targets, vectors,
                              lambda i: categories[i]).as_row()}
            for with_search, lam in configs]
