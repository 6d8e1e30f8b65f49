from __future__ import annotations

import math

import numpy as np
import pytest

from models.baselines import ItemKNN, ItemKNNConfig
from models.errors import InvalidInputError
from tests.models.conftest import make_sessions

SESSIONS = [[1, 2], [2, 1, 3], [1, 2], [3, 4], [4, 5], [5, 1]]


def test_recommends_the_item_that_co_occurs_most() -> None:
    knn = ItemKNN(ItemKNNConfig(include_self=False, lambda_=0.0))
    knn.fit(SESSIONS, n_items=5)
    assert knn.rank([[4, 1]], k=1).tolist() == [[2]]  # last item 1: 2 co-occurs 3 times


def test_similarity_is_cosine_with_shrinkage() -> None:
    # cnt(1) = 4 sessions, cnt(2) = 3, cnt(1, 2) = 3; cnt(3) = 2, cnt(1, 3) = 1
    for lam in (0.0, 5.0):
        knn = ItemKNN(ItemKNNConfig(include_self=False, lambda_=lam, popularity_fallback=False))
        knn.fit(SESSIONS, n_items=5)
        scores = knn.score([[1]])[0]
        sim_12, sim_13 = 3 / (math.sqrt(4 * 3) + lam), 1 / (math.sqrt(4 * 2) + lam)
        sim_15 = 1 / (math.sqrt(4 * 2) + lam)
        # scores are scaled to (1, 2] by the row maximum: ratios are preserved
        assert scores[2] == pytest.approx(2.0)
        assert scores[3] - 1 == pytest.approx(sim_13 / sim_12, rel=1e-6)
        assert scores[5] - 1 == pytest.approx(sim_15 / sim_12, rel=1e-6)
        assert scores[4] == 0.0 and scores[1] == 0.0  # no co-occurrence, self excluded


def test_alpha_weights_the_candidate_popularity() -> None:
    knn = ItemKNN(ItemKNNConfig(alpha=1.0, lambda_=0.0, include_self=False))
    knn.fit(SESSIONS, n_items=5)
    # alpha = 1: sim(1, j) = cnt(1, j) / cnt(1): ranks candidates by co-occurrence only
    scores = knn.score([[1]])[0]
    assert scores[3] == pytest.approx(scores[5])


def test_include_self_can_recommend_the_last_item() -> None:
    knn = ItemKNN(ItemKNNConfig(include_self=True, lambda_=0.0))
    knn.fit(SESSIONS, n_items=5)
    assert knn.rank([[1]], k=1).tolist() == [[1]]  # sim(1, 1) = 1 is the maximum


def test_unknown_last_item_falls_back_to_popularity() -> None:
    knn = ItemKNN()
    knn.fit([[1, 2], [2, 3], [2, 4]], n_items=5)
    assert knn.rank([[5]], k=1).tolist() == [[2]]  # 5 never seen: most popular
    assert knn.rank([[1, 0]], k=2).tolist() == knn.rank([[1]], k=2).tolist()  # OOV skipped


def test_matches_a_naive_implementation() -> None:
    sessions, n_items, cfg = make_sessions(60, 20, seed=3), 20, ItemKNNConfig(lambda_=2.0)
    knn = ItemKNN(cfg)
    knn.fit(sessions, n_items)
    sets = [set(s) for s in sessions]
    support = [sum(i in s for s in sets) for i in range(n_items + 1)]
    for last in range(1, n_items + 1):
        sim = np.zeros(n_items + 1)
        for j in range(1, n_items + 1):
            both = sum(last in s and j in s for s in sets)
            if both:
                sim[j] = both / (math.sqrt(support[last] * support[j]) + cfg.lambda_)
        scores = knn.score([[last]])[0]
        positive = sim > 0
        if positive.any():
            np.testing.assert_allclose(
                scores[positive] - 1, sim[positive] / sim.max(), rtol=1e-5, atol=1e-6
            )
        assert (scores[~positive][1:] < 1).all()


def test_bad_config_is_rejected() -> None:
    with pytest.raises(InvalidInputError):
        ItemKNNConfig(alpha=2.0)
