"""Text-kNN against hand-computed cosines."""

from __future__ import annotations

import numpy as np
import pytest

from models.baselines import TextKNN, TextKNNConfig
from models.errors import InvalidInputError

VECTORS = np.array([[0, 0], [1, 0], [0.8, 0.6], [0, 1], [0, 0]], dtype=np.float32)  # 4: no text


def test_scores_are_cosines_with_the_mean_of_the_prefix() -> None:
    knn = TextKNN(VECTORS, TextKNNConfig(exclude_history=False))
    knn.fit([[1, 2]], n_items=4)
    scores = knn.score([[1, 3], [4], [0, 2]])
    mean = np.array([1, 1]) / np.sqrt(2)  # of items 1 and 3
    np.testing.assert_allclose(scores[0, 1:], [mean @ [1, 0], mean @ [0.8, 0.6], mean @ [0, 1], 0],
                               rtol=1e-6)
    assert np.all(scores[1, 1:] == 0.0)  # a prefix without text: no preference
    np.testing.assert_allclose(scores[2, 1:], [0.8, 1.0, 0.6, 0.0], rtol=1e-6)  # OOV ignored
    assert np.isneginf(scores[:, 0]).all()


def test_history_ranks_last_by_default() -> None:
    knn = TextKNN(VECTORS)
    knn.fit([[1, 2]], n_items=4)
    assert knn.rank([[2]], k=4).tolist() == [[1, 3, 4, 2]]


def test_item_never_in_training_is_scored_like_any_other() -> None:
    knn = TextKNN(VECTORS)
    knn.fit([[1, 2]], n_items=4)  # item 3 never seen
    assert knn.rank([[2, 1]], k=1, exclude=None).tolist() == [[3]]


def test_vectors_must_match_the_catalogue() -> None:
    knn = TextKNN(VECTORS)
    with pytest.raises(InvalidInputError):
        knn.fit([[1, 2]], n_items=5)
