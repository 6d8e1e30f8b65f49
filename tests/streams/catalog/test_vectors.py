"""The embedding matrix behind the catalogue, and the reads built on it."""

from __future__ import annotations

import numpy as np

from schemas.items import Item
from streams.catalog.catalog import Catalog
from streams.catalog.records import CatalogRecord
from streams.catalog.vectors import EmbeddingTable


def test_rows_are_reused_and_the_matrix_grows() -> None:
    table = EmbeddingTable(2, initial_rows=2)
    table.put("a", np.array([1, 0], dtype=np.float32))
    table.put("b", np.array([0, 1], dtype=np.float32))
    table.put("c", np.array([1, 1], dtype=np.float32))  # past the first capacity
    table.drop("a")
    table.put("d", np.array([2, 2], dtype=np.float32))  # takes a's row
    assert len(table) == 3 and "a" not in table
    assert table.rows(["a", "b", "c", "d"])[0] == -1
    items, vectors = table.present(["d", "a", "b", "c"])
    assert items == ["d", "b", "c"]
    assert vectors.tolist() == [[2, 2], [0, 1], [1, 1]]
    table.put("b", np.array([5, 5], dtype=np.float32))  # replaced in place
    assert table.get("b").tolist() == [5, 5] and table.get("a") is None


def _reference_query(vectors: dict[str, np.ndarray], history: list[str]) -> np.ndarray | None:
    """The definition: the newest-weighted (1, 1/2, ...) mean of the embedded items."""
    total = None
    for rank, item in enumerate(reversed(history), start=1):
        if item in vectors:
            part = vectors[item] / rank
            total = part if total is None else total + part
    return None if total is None else total / np.linalg.norm(total)


def test_batched_queries_match_the_definition_row_by_row() -> None:
    rng = np.random.default_rng(3)
    vectors = {f"i{n}": v / np.linalg.norm(v)
               for n, v in enumerate(rng.standard_normal((30, 8)).astype(np.float32))}
    catalog = Catalog(dimensions=8)
    catalog.apply({item: CatalogRecord(Item(item, item), "h", v) for item, v in vectors.items()})
    catalog.apply({"i3": None})  # removed: no longer counts
    del vectors["i3"]
    histories = [[f"i{n}" for n in rng.integers(0, 35, size).tolist()]
                 for size in (0, 1, 5, 12, 3, 7)] + [["missing", "i3"], ["i1", "i1", "i2"]]
    queries, usable = catalog.queries(histories)
    for row, history in enumerate(histories):
        expected = _reference_query(vectors, history)
        assert usable[row] == (expected is not None)
        if expected is None:
            assert not queries[row].any()
        else:
            np.testing.assert_allclose(queries[row], expected, rtol=1e-5, atol=1e-6)


def test_closest_names_the_nearest_anchor_and_skips_items_without_text() -> None:
    catalog = Catalog(dimensions=2)
    catalog.apply({
        "x": CatalogRecord(Item("x", "x"), "h", np.array([1, 0], dtype=np.float32)),
        "y": CatalogRecord(Item("y", "y"), "h", np.array([0, 1], dtype=np.float32)),
        "near-x": CatalogRecord(Item("near-x", "n"), "h",
                                np.array([0.9, 0.1], dtype=np.float32)),
        "mute": CatalogRecord(Item("mute", "m"), "h", None),
    })
    assert catalog.closest_many([(["near-x", "mute", "unknown", "y"], ["y", "x"])]) == [{
        "near-x": "x", "y": "y"}]
    assert catalog.closest_many([(["near-x"], ["mute"])]) == [{}]


def test_closest_many_matches_one_pair_at_a_time() -> None:
    rng = np.random.default_rng(5)
    catalog = Catalog(dimensions=16)
    catalog.apply({f"i{n}": CatalogRecord(Item(f"i{n}", "t"), "h", v / np.linalg.norm(v))
                   for n, v in enumerate(rng.standard_normal((60, 16)).astype(np.float32))})
    pairs = [([f"i{n}" for n in rng.integers(0, 70, a).tolist()],
              [f"i{n}" for n in rng.integers(0, 70, b).tolist()])
             for a, b in ((5, 3), (0, 4), (9, 1), (2, 0), (12, 7), (1, 1))]
    expected = []
    for items, anchors in pairs:
        known = [a for a in anchors if a in catalog._vectors]
        answer = {}
        for item in items:
            if known and item in catalog._vectors:
                sims = [float(catalog.embeddings([item])[item] @ catalog.embeddings([a])[a])
                        for a in known]
                answer[item] = known[int(np.argmax(sims))]
        expected.append(answer)
    assert catalog.closest_many(pairs) == expected


def test_list_diversity_matches_the_pairwise_definition() -> None:
    from models.diversity import intra_list_diversity

    rng = np.random.default_rng(9)
    catalog = Catalog(dimensions=8)
    vectors = {f"i{n}": v / np.linalg.norm(v)
               for n, v in enumerate(rng.standard_normal((40, 8)).astype(np.float32))}
    catalog.apply({item: CatalogRecord(Item(item, item), "h", v) for item, v in vectors.items()})
    lists = [[f"i{n}" for n in rng.integers(0, 45, size).tolist()] for size in (20, 1, 0, 5)]
    lists.append(["i1", "nope"])  # one item with text: no figure
    found = catalog.list_diversity(lists)
    for items, value in zip(lists, found, strict=True):
        expected = intra_list_diversity([vectors[i] for i in items if i in vectors])
        assert (value is None) == (expected is None)
        if expected is not None:
            assert abs(value - expected) < 1e-5
