from __future__ import annotations

import numpy as np

from models.baselines import Popularity, PopularityConfig


def test_scores_are_training_counts_for_every_prefix() -> None:
    pop = Popularity()
    pop.fit([[1, 2, 2], [2, 3], [3]], n_items=4)
    scores = pop.score([[1], [4, 4]])
    np.testing.assert_array_equal(scores[:, 1:], [[1, 3, 2, 0], [1, 3, 2, 0]])
    assert scores[0, 0] == -np.inf
    assert pop.rank([[1]], k=3).tolist() == [[2, 3, 1]]


def test_session_counts_ignore_repeats() -> None:
    pop = Popularity(PopularityConfig(count_repeats=False))
    pop.fit([[1, 1, 1], [2], [2, 3]], n_items=3)
    assert pop.rank([[3]], k=1).tolist() == [[2]]
