"""``top_k_from_scores`` against a full sort, with ties, NaN and exclusions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.protocol import top_k_from_scores


def reference_top_k(scores: np.ndarray, k: int, exclude: list[list[int]]) -> np.ndarray:
    out = []
    for row, excluded in zip(scores, exclude, strict=True):
        candidates = [i for i in range(1, len(row)) if i not in excluded]
        value = {i: (-np.inf if np.isnan(row[i]) else row[i]) for i in candidates}
        out.append(sorted(candidates, key=lambda i: (-value[i], i))[:k])
    return np.array(out, dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_rows=st.integers(1, 6),
    width=st.sampled_from([5, 40, 2000, 5000]),
    k=st.integers(1, 25),
    levels=st.sampled_from([2, 10, 1_000_000]),
)
def test_matches_a_stable_full_sort(
    seed: int, n_rows: int, width: int, k: int, levels: int
) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=(n_rows, width + 1)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.05] = np.nan
    scores[rng.random(scores.shape) < 0.05] = -np.inf
    exclude = [rng.choice(np.arange(1, width + 1), size=2, replace=False).tolist()
               for _ in range(n_rows)]
    k = min(k, width - 2)  # enough items are left after the exclusions
    got = top_k_from_scores(scores, k, exclude)
    np.testing.assert_array_equal(got, reference_top_k(scores, k, exclude))


def test_never_returns_column_0_even_when_it_scores_best() -> None:
    scores = np.array([[9.0, 1.0, 3.0, 2.0]], dtype=np.float32)
    assert top_k_from_scores(scores, 3).tolist() == [[2, 3, 1]]


def test_does_not_modify_the_scores() -> None:
    scores = np.array([[0.0, 1.0, 3.0, 2.0]], dtype=np.float32)
    before = scores.copy()
    top_k_from_scores(scores, 2, exclude=[[2]])
    np.testing.assert_array_equal(scores, before)


def test_k_below_1_is_rejected() -> None:
    with pytest.raises(ValueError):
        top_k_from_scores(np.zeros((1, 4), dtype=np.float32), 0)
