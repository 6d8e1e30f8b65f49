"""The content index: exact search for small catalogues, an HNSW graph above the boundary,
lazy removal with rebuilds, and answers never shorter than exact search's."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.catalog.index import ContentIndex


def unit_rows(n: int, dims: int = 16, seed: int = 3) -> npt.NDArray[np.float32]:
    vectors = np.random.default_rng(seed).normal(size=(n, dims)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def exact(vectors: npt.NDArray[np.float32], ids: list[str], query: npt.NDArray[np.float32],
          k: int, alive: set[str]) -> list[str]:
    order = np.argsort(-(vectors @ query), kind="stable")
    return [ids[i] for i in order.tolist() if ids[i] in alive][:k]


def test_a_catalogue_above_the_boundary_is_searched_through_the_graph() -> None:
    vectors, ids = unit_rows(600), [f"i{n:03d}" for n in range(600)]
    index = ContentIndex(16, exact_up_to=100)
    index.upsert(ids[:100], vectors[:100])
    assert index.kind == "exact" and not index.needs_rebuild()
    index.upsert(ids[100:], vectors[100:])
    assert index.needs_rebuild()
    index = index.rebuilt()
    assert index.kind == "hnsw" and len(index) == 600
    hits = total = 0
    for row in range(50):
        found = [item for item, _ in index.search(vectors[row:row + 1], 20)[0]]
        truth = exact(vectors, ids, vectors[row], 20, set(ids))
        assert len(found) == 20
        hits += len(set(found) & set(truth))
        total += 20
    assert hits / total >= 0.95  # recall@20 of the graph on random 16-d vectors


def test_removed_and_replaced_items_never_come_back() -> None:
    vectors, ids = unit_rows(400), [f"i{n:03d}" for n in range(400)]
    index = ContentIndex(16, exact_up_to=50).rebuilt()
    index.upsert(ids, vectors)
    gone = set(ids[::3])
    index.remove(gone)
    moved = unit_rows(1, seed=9)
    index.upsert([ids[1]], moved)  # a new vector for i001: its old row is dead
    alive = set(ids) - gone
    assert len(index) == len(alive)
    for row in range(0, 400, 7):
        found = index.search(vectors[row:row + 1], 30)[0]
        assert not {item for item, _ in found} & gone
        assert len(found) == 30
    (first, score), *_ = index.search(moved, 1)[0]
    assert first == ids[1] and score == pytest.approx(1.0, abs=1e-5)


def test_a_mostly_dead_index_is_rebuilt_with_the_live_items_only() -> None:
    vectors, ids = unit_rows(1200), [f"i{n:04d}" for n in range(1200)]
    index = ContentIndex(16, exact_up_to=100)
    index.upsert(ids, vectors)
    index = index.rebuilt()
    index.remove(ids[:400])
    assert index.needs_rebuild()
    fresh = index.rebuilt()
    assert len(fresh) == 800 and not fresh.needs_rebuild() and fresh.kind == "hnsw"
    assert fresh.search(vectors[500:501], 1)[0][0][0] == ids[500]


@settings(max_examples=40, deadline=None)
@given(removed=st.sets(st.integers(0, 79), max_size=70), k=st.integers(1, 40))
def test_exact_search_with_removals_equals_brute_force(removed: set[int], k: int) -> None:
    vectors, ids = unit_rows(80), [f"i{n:02d}" for n in range(80)]
    index = ContentIndex(16)
    index.upsert(ids, vectors)
    index.remove(ids[n] for n in removed)
    alive = {ids[n] for n in range(80) if n not in removed}
    found = index.search(vectors[:3], k)
    for row in range(3):
        assert [item for item, _ in found[row]] == exact(vectors, ids, vectors[row], k, alive)
