"""The offline re-ranking harness on a tiny synthetic catalogue with three topics."""

from __future__ import annotations

import numpy as np

from models.rerank_eval import evaluate_lists, rerank_lists

TOPICS = 3
PER_TOPIC = 10
N = TOPICS * PER_TOPIC  # items 1..30; item i belongs to topic (i - 1) // 10


def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    out = np.zeros((N + 1, TOPICS), dtype=np.float32)
    for item in range(1, N + 1):
        out[item, (item - 1) // PER_TOPIC] = 1.0
        out[item] += 0.05 * rng.random(TOPICS)
    out[1:] /= np.linalg.norm(out[1:], axis=1, keepdims=True)
    return out


def topic(item: int) -> str:
    return f"t{(item - 1) // PER_TOPIC}"


def scores(rows: int) -> np.ndarray:
    """The model likes topic 0, then topic 1, then topic 2."""
    out = np.zeros((rows, N + 1), dtype=np.float32)
    out[:, 1:] = np.linspace(1.0, 0.0, N)
    return out


def test_diversity_spreads_lists_over_topics_at_a_cost_in_accuracy() -> None:
    v = vectors()
    targets = [2, 3]  # the model's own favourites
    plain = evaluate_lists(rerank_lists(scores(2), v, lam=0.0, k=5), targets, v, topic, k=5)
    varied = evaluate_lists(rerank_lists(scores(2), v, lam=0.7, k=5), targets, v, topic, k=5)
    assert plain.coverage == 1 / 5 and varied.coverage == 3 / 5
    assert varied.diversity > plain.diversity
    assert plain.hr_at_20 == 1.0 and plain.ndcg_at_10 > varied.ndcg_at_10


def test_a_search_for_the_targets_topic_brings_it_into_the_list() -> None:
    v = vectors()
    targets = [25, 28]  # topic 2: the model ranks it last
    query = np.tile(np.array([0.0, 0.0, 1.0], dtype=np.float32), (2, 1))
    without = evaluate_lists(rerank_lists(scores(2), v, lam=0.0, k=5, pool_size=5),
                             targets, v, topic, k=5)
    with_search = evaluate_lists(
        rerank_lists(scores(2), v, lam=0.0, queries=query, k=5, pool_size=5),
        targets, v, topic, k=5)
    assert without.hr_at_20 == 0.0
    assert with_search.hr_at_20 > 0.0
