"""The item index and its exact re-scoring (``models.retrieval``) on seeded synthetic item
tables: unit vectors (a cosine model), raw vectors of unequal length (a dot-product model)
and per-item offsets; recall against exact ranking, exclusions, the exact fallback, the
``top_k`` tie order, determinism and the GPU switch."""

from __future__ import annotations

import numpy as np
import pytest

from models import retrieval
from models.errors import InvalidInputError
from models.protocol import top_k
from models.retrieval import AnnSettings, ItemIndex, Retriever

N_ITEMS, DIM = 3000, 24


def clustered_table(unit: bool, seed: int = 0) -> np.ndarray:
    """``(N_ITEMS + 1, DIM)`` item vectors in 60 clusters; row 0 (padding) zero; unit rows
    or rows whose lengths vary by 4x."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(60, DIM))
    table = centres[rng.integers(0, 60, N_ITEMS)] + 0.6 * rng.normal(size=(N_ITEMS, DIM))
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    if not unit:
        table *= rng.uniform(0.5, 2.0, size=(N_ITEMS, 1))
    return np.vstack([np.zeros((1, DIM)), table]).astype(np.float32)


def queries(n: int = 200, seed: int = 1) -> np.ndarray:
    """Session-like queries: near a cluster of items, scaled like a temperature."""
    table = clustered_table(unit=True)
    rng = np.random.default_rng(seed)
    picks = table[rng.integers(1, N_ITEMS + 1, size=n)]
    return (8.0 * (picks + 0.3 * rng.normal(size=picks.shape))).astype(np.float32)


def exact_top(vectors, bias, q, k, excluded=None) -> list[list[int]]:
    scores = q @ vectors.T + (0.0 if bias is None else bias)
    scores[:, 0] = -np.inf
    return top_k(scores, k, excluded).tolist()


def recall(got: list[list[int]], want: list[list[int]]) -> float:
    return float(np.mean([len(set(g) & set(w)) / len(w) for g, w in zip(got, want, strict=True)]))


@pytest.mark.parametrize(("unit", "with_bias"), [(True, False), (False, False), (False, True)])
def test_few_candidates_recall_the_exact_top_20(unit: bool, with_bias: bool) -> None:
    vectors = clustered_table(unit)
    bias = None
    if with_bias:
        bias = np.random.default_rng(2).normal(scale=0.5, size=N_ITEMS + 1).astype(np.float32)
        bias[0] = -1e9
    retriever = Retriever(vectors, bias, AnnSettings(candidates=50))
    assert retriever.index.has_bias is with_bias
    q = queries()
    got = [row.tolist() for row, _ in retriever.top(q, 20)]
    assert all(len(row) == 20 for row in got)
    assert recall(got, exact_top(vectors, bias, q, 20)) >= 0.95


def test_candidates_covering_the_catalogue_rank_exactly() -> None:
    vectors = clustered_table(unit=False)[:301]  # 300 items
    retriever = Retriever(vectors, None, AnnSettings(candidates=300))
    q = queries(50)
    ranked = retriever.top(q, 40)
    scores = q @ vectors.T
    scores[:, 0] = -np.inf
    for row, (items, item_scores) in enumerate(ranked):
        assert items.tolist() == top_k(scores[row : row + 1], 40)[0].tolist()
        np.testing.assert_allclose(item_scores, scores[row, items], rtol=1e-5)


def test_ties_go_to_the_lower_index_as_in_top_k() -> None:
    """Distinct vectors with equal scores (they differ where the query is 0): among the
    returned items equal scores are ordered by lower index; with candidates covering the
    catalogue the list is exactly ``top_k``'s."""
    rng = np.random.default_rng(3)
    vectors = np.hstack([np.ones((201, 1)), rng.normal(size=(201, 3))]).astype(np.float32)
    vectors[0] = 0.0
    vectors[150, 0] = 2.0  # the one better item
    query = np.array([[1.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    items, scores = Retriever(vectors, None, AnnSettings(candidates=200)).top(query, 5)[0]
    assert items.tolist() == [150, 1, 2, 3, 4] and scores.tolist() == [2.0, 1.0, 1.0, 1.0, 1.0]
    items, scores = Retriever(vectors, None, AnnSettings(candidates=20)).top(query, 10)[0]
    assert items[0] == 150 and items[1:].tolist() == sorted(items[1:].tolist())
    assert scores[1:].tolist() == [1.0] * 9


def test_excluded_items_and_padding_are_never_returned() -> None:
    vectors = clustered_table(unit=True)
    retriever = Retriever(vectors, None, AnnSettings(candidates=60))
    q = queries(30)
    best = exact_top(vectors, None, q, 10)
    excluded = [row[:5] + [0, N_ITEMS + 7] for row in best]  # the 5 best, padding, unknown
    for (items, _), ex in zip(retriever.top(q, 20, excluded), excluded, strict=True):
        assert len(items) == 20
        assert not set(items.tolist()) & set(ex)


def test_too_few_candidates_left_falls_back_to_exact() -> None:
    vectors = clustered_table(unit=True)
    retriever = Retriever(vectors, None, AnnSettings(candidates=25))
    q = queries(4)
    excluded = [row[:20] for row in exact_top(vectors, None, q, 20)]  # most candidates gone
    ranked = retriever.top(q, 20, excluded)
    assert retriever.fallback_rows >= 1
    want = exact_top(vectors, None, q, 20, excluded)
    for (items, _), want_row in zip(ranked, want, strict=True):
        assert len(items) == 20
        assert items.tolist() == want_row


def test_a_catalogue_smaller_than_k_returns_every_item_once() -> None:
    vectors = clustered_table(unit=True)[:8]  # 7 items
    retriever = Retriever(vectors, None, AnnSettings(candidates=5))
    items, _ = retriever.top(queries(1), 20, [[3]])[0]
    assert sorted(items.tolist()) == [1, 2, 4, 5, 6, 7]


def test_the_index_is_deterministic() -> None:
    vectors, q = clustered_table(unit=False), queries(100)
    first = Retriever(vectors, None, AnnSettings(candidates=30, ef_search=40))
    second = Retriever(vectors, None, AnnSettings(candidates=30, ef_search=40))
    assert (first.index.search(q, 30) == second.index.search(q, 30)).all()


def test_search_pads_with_minus_one_and_rejects_wrong_shapes() -> None:
    index = ItemIndex(clustered_table(unit=True)[:6], None, AnnSettings(candidates=10))
    found = index.search(queries(2), 10)
    assert found.shape == (2, 10) and (found[:, 5:] == -1).all()
    assert sorted(found[0, :5].tolist()) == [1, 2, 3, 4, 5]
    assert index.nbytes() and index.nbytes() > 0
    with pytest.raises(InvalidInputError):
        index.search(np.zeros((1, DIM + 1), dtype=np.float32), 3)


def test_invalid_settings_are_rejected() -> None:
    for bad in ({"candidates": 0}, {"ef_search": 0}, {"m": 1}):
        with pytest.raises(InvalidInputError):
            AnnSettings(**bad)
    assert AnnSettings(candidates=50, ef_search=20).breadth == 50
    assert AnnSettings(candidates=50, ef_search=80).breadth == 80


def test_the_gpu_index_is_used_only_with_a_faiss_gpu_build(monkeypatch) -> None:
    """faiss-cpu has no GPU support: the switch says no. With a (simulated) GPU build the
    index becomes an exact flat search moved to the GPU."""
    if not hasattr(retrieval.faiss, "StandardGpuResources"):
        assert not retrieval.faiss_gpu_available()
    moved = []

    def to_gpu(resources, device, index):  # type: ignore[no-untyped-def]
        moved.append((device, type(index).__name__))
        return index  # the CPU flat index stands in for the GPU one

    monkeypatch.setattr(retrieval.faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(retrieval.faiss, "index_cpu_to_gpu", to_gpu, raising=False)
    vectors, q = clustered_table(unit=True), queries(20)
    retriever = Retriever(vectors, None, AnnSettings(candidates=20), use_gpu=True)
    assert moved == [(0, "IndexFlat")] and retriever.index.device == "cuda"
    assert retriever.index.nbytes() is None
    got = [row.tolist() for row, _ in retriever.top(q, 20)]
    assert got == exact_top(vectors, None, q, 20)  # flat search: exact
