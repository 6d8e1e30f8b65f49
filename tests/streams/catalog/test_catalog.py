"""The catalogue view: what may be recommended, and nearest items by text."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.items import Item
from streams.catalog.catalog import Catalog
from streams.catalog.index import ContentIndex
from streams.catalog.records import CatalogRecord


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def record(item_id: str, vector: np.ndarray | None, available: bool = True,
           category: tuple[str, ...] = ()) -> CatalogRecord:
    return CatalogRecord(Item(item_id, f"title {item_id}", available=available,
                              category=category), "h", vector)


@pytest.fixture
def catalog() -> Catalog:
    catalog = Catalog(dimensions=3)
    catalog.apply({
        "a": record("a", unit(1, 0, 0)),
        "b": record("b", unit(0.9, 0.1, 0)),
        "c": record("c", unit(0, 1, 0)),
        "gone": record("gone", unit(1, 0.05, 0), available=False),
        "mute": record("mute", None),
    })
    return catalog


def test_an_empty_catalogue_lets_everything_through() -> None:
    empty = Catalog(dimensions=3)
    assert empty.recommendable("anything")
    assert empty.keep_recommendable([("x", 1.0)]) == [("x", 1.0)]


def test_only_available_catalogue_items_are_recommendable(catalog: Catalog) -> None:
    assert [catalog.recommendable(i) for i in ("a", "gone", "mute", "never-published")] == [
        True, False, True, False]
    assert catalog.keep_recommendable([("gone", 3.0), ("a", 2.0), ("x", 1.0)]) == [("a", 2.0)]


def test_the_index_holds_available_embedded_items_only(catalog: Catalog) -> None:
    assert len(catalog) == 5 and catalog.indexed == 3
    assert [item for item, _ in catalog.similar_to("a", 5)] == ["b", "c"]


def test_going_out_of_stock_and_back_moves_the_item_out_of_and_into_the_index(
    catalog: Catalog,
) -> None:
    catalog.apply({"b": record("b", unit(0.9, 0.1, 0), available=False)})
    assert [item for item, _ in catalog.similar_to("a", 5)] == ["c"]
    assert not catalog.recommendable("b")
    catalog.apply({"b": record("b", unit(0.9, 0.1, 0))})
    assert [item for item, _ in catalog.similar_to("a", 5)] == ["b", "c"]


def test_a_removed_item_is_gone_everywhere(catalog: Catalog) -> None:
    catalog.apply({"b": None})
    assert catalog.facts("b") is None and not catalog.recommendable("b")
    assert [item for item, _ in catalog.similar_to("a", 5)] == ["c"]


def test_queries_weigh_newer_items_more(catalog: Catalog) -> None:
    queries, usable = catalog.queries([["a", "c"], ["c", "a"], ["mute"], []])
    assert usable == [True, True, False, False]
    assert queries[0] @ unit(0, 1, 0) > queries[0] @ unit(1, 0, 0)  # c is newest
    assert queries[1] @ unit(1, 0, 0) > queries[1] @ unit(0, 1, 0)
    assert not queries[2].any() and np.isclose(np.linalg.norm(queries[0]), 1.0)


def test_index_search_matches_exact_search_and_breaks_ties_by_id() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ContentIndex(16)
    ids = [f"i{n:03d}" for n in range(300)]
    index.upsert(ids, vectors)
    queries = vectors[:10]
    exact = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :20]
    found = index.search(queries, 20)
    for row in range(10):
        assert [item for item, _ in found[row]] == [ids[i] for i in exact[row]]
    tied = ContentIndex(2)
    tied.upsert(["z", "y", "x"], np.array([[1, 0], [1, 0], [1, 0]], dtype=np.float32))
    assert [item for item, _ in tied.search(np.array([[1, 0]], np.float32), 3)[0]] == [
        "x", "y", "z"]
