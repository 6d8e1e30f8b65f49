"""Item-KNN (as in the GRU4Rec paper): score items by their session co-occurrence
similarity to the prefix's last item.

``sim(i, j) = cnt(i, j) / (cnt(i)^alpha * cnt(j)^(1 - alpha) + lambda_)`` where ``cnt(i)``
counts training sessions containing ``i`` and ``cnt(i, j)`` sessions containing both;
``alpha = 0.5, lambda_ = 0`` is plain cosine similarity, ``lambda_ > 0`` damps the
similarity of rarely seen items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.baselines._common import (
    binary_matrix,
    check_fit_args,
    flatten,
    last_items,
    popularity_prior,
    require_fitted,
    tiered_scores,
)
from models.errors import InvalidInputError
from models.protocol import Session, SessionRecommender


@dataclass(frozen=True)
class ItemKNNConfig:
    """Defaults chosen on the validation split carved from Diginetica's training sessions."""

    alpha: float = 0.5  # exponent of cnt(i) in the normaliser (0.5 = symmetric cosine)
    lambda_: float = 20.0  # shrinkage added to the normaliser; 0 = plain cosine
    include_self: bool = True  # sim(i, i) = cnt(i) / norm, so the last item can be repeated
    popularity_fallback: bool = True  # order items without similarity by popularity

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0 or self.lambda_ < 0:
            raise InvalidInputError("ItemKNNConfig: need 0 <= alpha <= 1 and lambda_ >= 0")


@dataclass(frozen=True)
class _State:
    n_items: int
    sim: sp.csr_matrix  # (n_items + 1, n_items + 1) similarity of row item to column item
    prior: npt.NDArray[np.float32] | None  # (n_items + 1,) popularity in [0, 1)


class ItemKNN(SessionRecommender):
    """Session co-occurrence item-kNN on the last item of the prefix.

    >>> knn = ItemKNN(ItemKNNConfig(include_self=False))
    >>> knn.fit([[1, 2], [1, 2], [3, 4], [4, 3], [1, 3]], n_items=4)
    >>> knn.rank([[4, 1]], k=1).tolist()
    [[2]]
    """

    name = "iknn"

    def __init__(self, config: ItemKNNConfig | None = None) -> None:
        self.config = config or ItemKNNConfig()
        self._state: _State | None = None

    def fit(self, sessions: Sequence[Session], n_items: int) -> None:
        check_fit_args(sessions, n_items, self.name)
        cfg = self.config
        items, offsets = flatten(sessions, n_items)
        x = binary_matrix(items, offsets, n_items)  # (S, n + 1)
        support = np.asarray(x.sum(axis=0)).ravel()  # (n + 1,) sessions containing item
        cooc = (x.T @ x).tocoo()  # (n + 1, n + 1) sessions containing both
        keep = cooc.row != cooc.col if not cfg.include_self else np.ones(cooc.nnz, bool)
        rows, cols = cooc.row[keep], cooc.col[keep]
        norm = support[rows] ** cfg.alpha * support[cols] ** (1.0 - cfg.alpha) + cfg.lambda_
        sim = sp.csr_matrix(
            ((cooc.data[keep] / norm).astype(np.float32), (rows, cols)),
            shape=(n_items + 1, n_items + 1),
        )
        prior = popularity_prior(items, n_items) if cfg.popularity_fallback else None
        self._state = _State(n_items, sim, prior)

    def score(self, prefixes: Sequence[Session]) -> npt.NDArray[np.float32]:
        state = require_fitted(self._state, self.name)
        last = last_items(prefixes, state.n_items)  # (B,), 0 = no known item
        return tiered_scores(state.sim[last].toarray(), state.prior)  # (B, n + 1)
