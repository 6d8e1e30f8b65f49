"""The one interface every recommender implements.

Baselines, neural models and the stream's scorer are interchangeable through it, and the
evaluation harness treats them alike. Item indices are dense ``1..n_items``; ``0`` is padding
and out-of-vocabulary and is never recommended.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Session = Sequence[int]
"""Item indices of one session (or one user's history), oldest first."""


@runtime_checkable
class SessionRecommender(Protocol):
    """Fit on sessions, score prefixes against the whole catalogue, rank."""

    name: str

    def fit(self, sessions: Sequence[Session], n_items: int) -> None:
        """Learn from training sessions whose items are indices in ``1..n_items``."""
        ...

    def score(self, prefixes: Sequence[Session]) -> npt.NDArray[np.float32]:
        """Scores of every item for every prefix: shape ``(len(prefixes), n_items + 1)``.

        Column 0 (padding/OOV) must hold ``-inf`` or a value below every real score. Never
        mutates ``self`` or ``prefixes``.
        """
        ...

    def rank(
        self,
        prefixes: Sequence[Session],
        k: int,
        exclude: Sequence[Sequence[int]] | None = None,
    ) -> npt.NDArray[np.int64]:
        """Top-``k`` item indices per prefix, best first, skipping ``exclude[i]`` for row i."""
        ...


def top_k_from_scores(
    scores: npt.NDArray[np.float32],
    k: int,
    exclude: Sequence[Sequence[int]] | None = None,
) -> npt.NDArray[np.int64]:
    """Best-first top-``k`` columns of each row, never column 0, never an excluded index.

    Deterministic: equal scores are ordered by lower index first; NaN ranks like ``-inf``.
    ``k`` is capped at ``n_items``; an excluded item can only appear when fewer than ``k``
    items are left.

    >>> import numpy as np
    >>> s = np.array([[0.0, 0.1, 0.9, 0.5]], dtype=np.float32)
    >>> top_k_from_scores(s, 2).tolist()
    [[2, 3]]
    >>> top_k_from_scores(s, 2, exclude=[[2]]).tolist()
    [[3, 1]]
    """
    neg = np.negative(scores[:, 1:], dtype=np.float32)  # (B, n) copy; smallest = best
    worst = np.finfo(np.float32).max  # NaN and -inf scores: after every finite score...
    np.copyto(neg, worst, where=~(neg < np.inf))  # ...but before excluded items (+inf)
    if exclude is not None:
        for row, items in enumerate(exclude):
            cols = np.asarray(items, dtype=np.int64)
            cols = cols[(cols >= 1) & (cols <= neg.shape[1])]
            neg[row, cols - 1] = np.inf
    k = min(k, neg.shape[1])
    if k < 1:
        raise ValueError(f"k must be >= 1 and the catalogue non-empty (k={k})")
    return _smallest_k(neg, k) + 1


def _smallest_k(neg: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
    """Column indices of the ``k`` smallest values per row, by (value, index)."""
    n_rows, width = neg.shape
    n_chunks = 4 * k
    mask = np.zeros(neg.shape, dtype=bool)
    if width >= 16 * n_chunks:
        # Fast path: the k-th smallest of n_chunks chunk minima bounds the k-th smallest
        # value from above, so `neg <= bound` holds every winner plus a few others.
        chunk = width // n_chunks
        minima = neg[:, : chunk * n_chunks].reshape(n_rows, n_chunks, chunk).min(axis=2)
        bound = np.partition(minima, k - 1, axis=1)[:, k - 1 : k]  # (B, 1)
        np.less_equal(neg, bound, out=mask)  # (B, n)
        counts = np.count_nonzero(mask, axis=1)
        slow = counts > 64 * k  # heavy ties at the bound: use the exact path below
        mask[slow] = False
    else:
        slow = np.ones(n_rows, dtype=bool)
    if slow.any():
        sub = neg[slow]
        kth = np.partition(sub, k - 1, axis=1)[:, k - 1 : k]  # (b, 1) k-th smallest value
        better = sub < kth
        ties = sub == kth
        room = k - np.count_nonzero(better, axis=1, keepdims=True)  # ties to take, by index
        mask[slow] = better | (ties & (np.cumsum(ties, axis=1) <= room))
    rows, cols = np.divmod(np.flatnonzero(mask), width)  # flatnonzero: much faster
    order = np.lexsort((cols, neg[rows, cols], rows))  # per row: value, then index
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    return cols[starts[:, None] + np.arange(k)].astype(np.int64)  # (B, k)
