from __future__ import annotations

import math

import numpy as np
import pytest

from models.baselines import SessionKNN, SessionKNNConfig, session_knn
from models.errors import InvalidInputError
from tests.models.conftest import TINY_N_ITEMS, make_sessions


def naive_stan(
    sessions: list[list[int]], prefix: list[int], n_items: int, cfg: SessionKNNConfig
) -> np.ndarray:
    """STAN item scores with every training session as a neighbour (k >= n_sessions)."""
    assert cfg.position_decay and cfg.recency_decay and cfg.neighbour_decay
    last_pos = {item: p for p, item in enumerate(prefix, start=1) if item}
    weight = {i: math.exp((p - len(prefix)) / cfg.position_decay) for i, p in last_pos.items()}
    scores = np.zeros(n_items + 1)
    for index, session in enumerate(sessions):
        positions = {item: p for p, item in enumerate(session, start=1)}
        shared = set(positions) & set(last_pos)
        if not shared:
            continue
        sim = sum(weight[i] for i in shared) / math.sqrt(len(last_pos) * len(positions))
        sim *= math.exp(-(len(sessions) - 1 - index) / (cfg.recency_decay * len(sessions)))
        anchor = positions[max(shared, key=last_pos.__getitem__)]
        for item, p in positions.items():
            scores[item] += sim * math.exp(-abs(p - anchor) / cfg.neighbour_decay)
    return scores


def test_matches_a_naive_stan_when_every_session_is_a_neighbour() -> None:
    n_items, sessions = 20, make_sessions(50, 20, seed=5)
    cfg = SessionKNNConfig(k=1000, position_decay=1.5, recency_decay=0.3, neighbour_decay=2.5)
    knn = SessionKNN(cfg)
    knn.fit(sessions, n_items)
    prefixes = [[3], [4, 5, 4], [17, 2, 9, 10], [1, 0, 19]]
    scores = knn.score(prefixes)
    for row, prefix in enumerate(prefixes):
        expected = naive_stan(sessions, prefix, n_items, cfg)
        positive = expected > 0
        np.testing.assert_allclose(
            scores[row, positive] - 1, expected[positive] / expected.max(), rtol=1e-5, atol=1e-6
        )
        assert (scores[row, 1:][~positive[1:]] < 1).all()


def test_recommends_what_similar_sessions_continue_with() -> None:
    knn = SessionKNN()
    knn.fit([[1, 2, 3], [4, 5, 6], [1, 2, 3], [4, 5, 7]], n_items=7)
    assert knn.rank([[1, 2]], k=1, exclude=[[1, 2]]).tolist() == [[3]]


def test_k_keeps_the_most_similar_and_then_most_recent_neighbours() -> None:
    sessions = [[1, 2, 8], [1, 2, 9], [1, 5]]
    cfg = SessionKNNConfig(k=1, recency_decay=None, neighbour_decay=None)
    knn = SessionKNN(cfg)
    knn.fit(sessions, n_items=9)
    # [1, 2, 8] and [1, 2, 9] tie on similarity: the more recent (later) one is kept
    assert knn.rank([[1, 2]], k=1, exclude=[[1, 2]]).tolist() == [[9]]


def test_recency_favours_recent_neighbours() -> None:
    sessions = [[1, 8], [1, 9]]
    knn = SessionKNN(SessionKNNConfig(recency_decay=0.1))
    knn.fit(sessions, n_items=9)
    assert knn.rank([[1]], k=1, exclude=[[1]]).tolist() == [[9]]


def test_items_near_the_match_score_higher() -> None:
    knn = SessionKNN(SessionKNNConfig(neighbour_decay=1.0))
    knn.fit([[9, 8, 7, 1, 2]], n_items=9)
    scores = knn.score([[1]])[0]
    assert scores[1] > scores[2] == scores[7] > scores[8] > scores[9]


def test_empty_or_unknown_prefix_falls_back_to_popularity() -> None:
    knn = SessionKNN()
    knn.fit([[1, 2], [2, 3], [2, 4]], n_items=5)
    assert knn.rank([[5], []], k=1).tolist() == [[2], [2]]


def test_bad_config_is_rejected() -> None:
    with pytest.raises(InvalidInputError):
        SessionKNNConfig(position_decay=0.0)


def test_small_and_large_batches_score_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gathering each item's sessions (small batches) and the sparse product (large ones)
    find the same neighbours with the same weights."""
    knn = SessionKNN()
    knn.fit(make_sessions(120, seed=7), TINY_N_ITEMS)
    rng = np.random.default_rng(3)
    prefixes = [rng.integers(0, TINY_N_ITEMS + 1, size=int(rng.integers(1, 7))).tolist()
                for _ in range(20)]
    monkeypatch.setattr(session_knn, "GATHER_MAX_ROWS", 0)  # sparse product
    product = knn.neighbour_scores(prefixes)
    monkeypatch.setattr(session_knn, "GATHER_MAX_ROWS", 100)  # gathering
    gathered = knn.neighbour_scores(prefixes)
    np.testing.assert_allclose(gathered, product, rtol=1e-12, atol=0)
    assert (product > 0).sum() > 100
