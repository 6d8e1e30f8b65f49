"""Text-kNN: recommend the items whose text is closest to the session's.

``score(i) = cos(mean of the prefix items' text vectors, text vector of i)``. It learns
nothing from the training sessions, so it ranks an item never seen in training exactly as
any other: the simplest baseline of the cold-item protocol. Items without text (zero
vectors) score 0; a prefix with no text scores every item 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.baselines._common import check_fit_args, flatten, require_fitted, row_ids
from models.errors import InvalidInputError
from models.protocol import Session, SessionRecommender


@dataclass(frozen=True)
class TextKNNConfig:
    """Chosen on the Amazon Scientific validation cases (NDCG@10 0.0512 excluding the
    history, 0.0374 not)."""

    exclude_history: bool = True  # rank the prefix's own items last (they are nearest
    # to the prefix's text by construction)


class TextKNN(SessionRecommender):
    """Cosine between the mean text vector of the prefix and every item's text vector.

    ``item_vectors`` is the ``(n_items + 1, d)`` table of ``models.text.item_vectors``
    (row 0 and items without text are zero).

    >>> vectors = np.array([[0, 0], [1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    >>> knn = TextKNN(vectors)
    >>> knn.fit([[1, 2]], n_items=3)
    >>> knn.rank([[1]], k=3).tolist()  # item 1 itself last: exclude_history
    [[2, 3, 1]]
    """

    name = "textknn"

    def __init__(
        self, item_vectors: npt.NDArray[np.floating], config: TextKNNConfig | None = None
    ) -> None:
        vectors = np.asarray(item_vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) < 2:
            raise InvalidInputError(f"item_vectors must be (n_items + 1, d), got {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.config = config or TextKNNConfig()
        self._vectors = vectors / np.maximum(norms, 1e-12)  # (n + 1, d) unit or zero rows
        self._vectors[0] = 0.0
        self._n_items: int | None = None

    def fit(self, sessions: Sequence[Session], n_items: int) -> None:
        check_fit_args(sessions, n_items, self.name)
        if n_items != len(self._vectors) - 1:
            raise InvalidInputError(
                f"{self.name}: {len(self._vectors) - 1} item vectors for {n_items} items"
            )
        self._n_items = n_items

    def score(self, prefixes: Sequence[Session]) -> npt.NDArray[np.float32]:
        n_items = require_fitted(self._n_items, self.name)
        items, offsets = flatten(prefixes, n_items, "prefix")
        rows = row_ids(offsets)
        sums = np.zeros((len(prefixes), self._vectors.shape[1]), dtype=np.float64)
        np.add.at(sums, rows, self._vectors[items])  # (B, d); OOV rows are zero
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        query = (sums / np.maximum(norms, 1e-12)).astype(np.float32)  # (B, d)
        scores = query @ self._vectors.T  # (B, n + 1)
        if self.config.exclude_history:
            scores[rows, items] = -2.0  # below every cosine
        scores[:, 0] = -np.inf
        return scores
