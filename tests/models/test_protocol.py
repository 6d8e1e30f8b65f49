"""``top_k`` (the one ranking rule) against a full sort, with ties, NaN and exclusions, and
the ``SessionRecommender`` base class's ``rank``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.errors import InvalidInputError
from models.protocol import SessionRecommender, top_k


def reference_top_k(
    scores: np.ndarray, k: int, exclude: Sequence[Sequence[int]] | None
) -> np.ndarray:
    """The documented rule as a full sort: not excluded first; higher score first (NaN as
    -inf); lower index first. Excluded items among themselves: by index."""
    out = []
    for r, row in enumerate(scores):
        excluded = set(exclude[r]) if exclude is not None else set()

        def key(i: int, row: np.ndarray = row, excluded: set[int] = excluded) -> tuple:
            if i in excluded:
                return (1, 0.0, i)
            return (0, -(-np.inf if np.isnan(row[i]) else float(row[i])), i)

        out.append(sorted(range(1, len(row)), key=key)[:k])
    return np.array(out, dtype=np.int64)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_rows=st.integers(1, 6),
    width=st.sampled_from([1, 5, 40, 2000, 5000]),
    k=st.integers(1, 30),
    levels=st.sampled_from([2, 10, 1_000_000]),
    n_excluded=st.integers(0, 6),
)
def test_matches_a_stable_full_sort(
    seed: int, n_rows: int, width: int, k: int, levels: int, n_excluded: int
) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=(n_rows, width + 1)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.05 * rng.random()] = np.nan
    scores[rng.random(scores.shape) < 0.05 * rng.random()] = -np.inf
    # out-of-range and repeated indices are allowed (and ignored)
    exclude = [rng.integers(-1, width + 3, size=n_excluded).tolist() for _ in range(n_rows)]
    for ex in (None, exclude):
        got = top_k(scores, k, ex)
        np.testing.assert_array_equal(got, reference_top_k(scores, k, ex))


def test_fast_and_exact_rows_mix_in_one_large_batch() -> None:
    """A catalogue large enough for the fast path, rows with NaN, heavy ties and
    exclusions (exact path) beside plain rows: every row follows the rule."""
    rng = np.random.default_rng(7)
    scores = rng.standard_normal((6, 20_001)).astype(np.float32)
    scores[1, 5] = np.nan
    scores[2] = np.round(scores[2])  # a handful of levels: heavy ties
    scores[3, 100:200] = scores[3].max()  # 100 items tie for first place
    scores[4] = 0.0  # everything ties
    exclude = [[1, 2], [], [3], list(range(100, 150)), [], [int(np.argmax(scores[5, 1:])) + 1]]
    np.testing.assert_array_equal(top_k(scores, 20, exclude), reference_top_k(scores, 20, exclude))


def test_never_returns_column_0_even_when_it_scores_best() -> None:
    scores = np.array([[9.0, 1.0, 3.0, 2.0]], dtype=np.float32)
    assert top_k(scores, 3).tolist() == [[2, 3, 1]]


def test_ties_go_to_the_lower_index_and_excluded_come_last() -> None:
    scores = np.array([[0.0, 1.0, 2.0, 2.0, 1.0, 2.0]], dtype=np.float32)
    assert top_k(scores, 5).tolist() == [[2, 3, 5, 1, 4]]
    assert top_k(scores, 5, exclude=[[3, 1]]).tolist() == [[2, 5, 4, 1, 3]]


def test_does_not_modify_the_scores() -> None:
    scores = np.array([[0.0, 1.0, 3.0, np.nan]], dtype=np.float32)
    before = scores.copy()
    top_k(scores, 2, exclude=[[2]])
    np.testing.assert_array_equal(scores, before)


def test_no_rows_give_an_empty_ranking() -> None:
    assert top_k(np.zeros((0, 5), dtype=np.float32), 3).shape == (0, 3)


@pytest.mark.parametrize(
    ("shape", "k", "exclude"),
    [((1, 4), 0, None), ((1, 1), 1, None), ((4,), 1, None), ((2, 4), 1, [[1]])],
)
def test_bad_arguments_are_rejected(
    shape: tuple[int, ...], k: int, exclude: list[list[int]] | None
) -> None:
    with pytest.raises(InvalidInputError):
        top_k(np.zeros(shape, dtype=np.float32), k, exclude)


class _Table(SessionRecommender):
    """Scores looked up by the prefix's first item (fit only records the catalogue)."""

    name = "table"

    def __init__(self, table: np.ndarray) -> None:
        self.table = table.astype(np.float32)

    def fit(self, sessions: Sequence[Sequence[int]], n_items: int) -> None:
        return None

    def score(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        return self.table[[p[0] for p in prefixes]]


def test_rank_is_top_k_of_score_in_batches() -> None:
    rng = np.random.default_rng(0)
    table = rng.integers(0, 3, size=(10, 12)).astype(np.float32)
    table[:, 0] = -np.inf
    model = _Table(table)
    model.rank_batch_size = 3  # 10 rows -> 4 batches
    prefixes = [[i] for i in range(10)]
    exclude = [[i + 1] for i in range(10)]
    np.testing.assert_array_equal(
        model.rank(prefixes, 4, exclude), top_k(model.score(prefixes), 4, exclude)
    )
    with pytest.raises(InvalidInputError):
        model.rank(prefixes, 0)
    with pytest.raises(InvalidInputError):
        model.rank(prefixes, 4, exclude[:3])
