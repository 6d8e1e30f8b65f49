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

    >>> import numpy as np
    >>> s = np.array([[0.0, 0.1, 0.9, 0.5]], dtype=np.float32)
    >>> top_k_from_scores(s, 2).tolist()
    [[2, 3]]
    >>> top_k_from_scores(s, 2, exclude=[[2]]).tolist()
    [[3, 1]]
    """
    neg = np.negative(scores, dtype=np.float32)  # one copy; smallest = best
    neg[:, 0] = np.inf
    if exclude is not None:
        for row, items in enumerate(exclude):
            if len(items):
                neg[row, np.asarray(items, dtype=np.int64)] = np.inf
    k = min(k, neg.shape[1] - 1)
    if k < 1:
        raise ValueError(f"k must be >= 1 and the catalogue non-empty (k={k})")
    part = np.argpartition(neg, kth=k - 1, axis=1)[:, :k]  # (B, k) unordered
    order = np.take_along_axis(neg, part, axis=1).argsort(axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)
