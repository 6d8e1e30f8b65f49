"""Metrics against hand-computed cases, tie handling, and the batched harness."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.baselines import Popularity
from models.errors import InvalidInputError
from models.evaluation import (
    MISS,
    EvaluationResult,
    ReindexedRecommender,
    evaluate,
    metrics_from_ranks,
    ranks_from_scores,
    render_table,
)
from models.protocol import SessionRecommender
from models.vocabulary import Vocabulary

JSON_KEYS = ["hr@10", "hr@20", "mrr@10", "mrr@20", "ndcg@10", "ndcg@20", "coverage@20", "cases"]


class FixedScores(SessionRecommender):
    """A stub recommender whose score row is looked up by the prefix's first item."""

    name = "fixed"

    def __init__(self, table: np.ndarray) -> None:
        self.table = table.astype(np.float32)

    def fit(self, sessions: Sequence[Sequence[int]], n_items: int) -> None:
        return None

    def score(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        return self.table[[p[0] for p in prefixes]].copy()


def test_ranks_are_pessimistic_on_ties_and_ignore_column_0() -> None:
    scores = np.array(
        [
            [99.0, 0.1, 0.5, 0.5, 0.2],  # target 2 ties with 3: rank 2
            [99.0, 0.9, 0.5, 0.5, 0.2],  # target 4 behind 1, 2, 3: rank 4
            [-np.inf, 0.0, 0.0, 0.0, 0.0],  # all tied: last
            [0.0, 0.3, np.nan, 0.1, 0.2],  # NaN target: miss
            [0.0, 0.3, np.nan, 0.1, 0.2],  # NaN elsewhere does not count
        ],
        dtype=np.float32,
    )
    ranks = ranks_from_scores(scores, np.array([2, 4, 1, 2, 3]))
    assert ranks.tolist() == [2, 4, 4, MISS, 3]


def test_a_target_scored_minus_infinity_is_a_miss_even_in_a_small_catalogue() -> None:
    """-inf means the model cannot know the item (OOV): ranked "last" among 5 items it would
    be rank 5, inside the top 10 and 20, and count as a hit."""
    table = np.array(
        [
            [0.0, 0.4, 0.3, -np.inf, 0.2, 0.1],  # target 3 unknown to the model
            [0.0, -np.inf, -np.inf, -np.inf, -np.inf, -np.inf],  # nothing known, target 2
            [0.0, 0.4, 0.3, np.inf, 0.2, 0.1],  # +inf is a (very confident) score: rank 1
        ],
        dtype=np.float32,
    )
    assert ranks_from_scores(table, np.array([3, 2, 3])).tolist() == [MISS, MISS, 1]
    result = evaluate(FixedScores(table), [[0], [1]], [3, 2], k_values=(10, 20))
    assert result["hr@10"] == result["hr@20"] == 0.0
    assert result["mrr@20"] == result["ndcg@20"] == 0.0


def test_a_target_the_reindexed_model_does_not_know_is_a_miss() -> None:
    """The data's item "c" is not in the model's vocabulary: it scores -inf, and a case
    whose target is "c" is a miss although the catalogue has only 3 items."""
    rec = ReindexedRecommender(Popularity(), Vocabulary(("a", "b")), Vocabulary(("a", "b", "c")))
    rec.fit([[1, 2, 2]], n_items=3)
    assert rec.score([[1]])[0, 3] == -np.inf
    result = evaluate(rec, [[1], [1]], [2, 3], k_values=(20,))
    assert result["hr@20"] == pytest.approx(1 / 2)  # "b" ranked 1st; "c" a miss
    assert result["mrr@20"] == pytest.approx(1 / 2)


class Recording(FixedScores):
    """FixedScores that records what it was fitted on."""

    def fit(self, sessions: Sequence[Sequence[int]], n_items: int) -> None:
        self.fitted_on = (list(sessions), n_items)


def test_reindexed_fit_on_no_sessions_binds_the_model() -> None:
    """A pre-trained model trains nothing: fitting it on an empty session list is fine."""
    inner = Recording(np.array([[0.0, 0.2, 0.1]]))
    rec = ReindexedRecommender(inner, Vocabulary(("a", "b")), Vocabulary(("b", "a")))
    rec.fit([], n_items=2)
    assert inner.fitted_on == ([], 2)
    assert rec.score([[0]])[0, 1:].tolist() == pytest.approx([0.1, 0.2])  # "b", "a"


def test_metrics_match_hand_computed_values() -> None:
    ranks = np.array([1, 2, 11, 25, MISS])
    m = metrics_from_ranks(ranks, k_values=(10, 20))
    assert m["hr@10"] == pytest.approx(2 / 5)
    assert m["hr@20"] == pytest.approx(3 / 5)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 2) / 5)
    assert m["mrr@20"] == pytest.approx((1 + 1 / 2 + 1 / 11) / 5)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 5)
    assert m["ndcg@20"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(12)) / 5)


def test_evaluate_end_to_end_on_a_stub() -> None:
    n_items = 30
    table = np.tile(np.arange(n_items + 1, dtype=np.float32)[::-1], (3, 1))  # item 1 best
    table[:, 0] = -np.inf
    table[2, 25] = 100.0  # row 2: item 25 first
    model = FixedScores(table)
    prefixes = [[0], [1], [2], [2]]
    targets = [1, 15, 25, 1]  # ranks 1, 15, 1, 2
    result = evaluate(model, prefixes, targets, batch_size=3)
    assert list(result.to_json_dict()) == JSON_KEYS
    assert result.cases == 4
    assert result["hr@10"] == pytest.approx(3 / 4)
    assert result["hr@20"] == 1.0
    assert result["mrr@20"] == pytest.approx((1 + 1 / 15 + 1 + 1 / 2) / 4)
    # top-20 lists: items 1..20 (rows 0, 1) and 25 + 1..19 (row 2) -> 21 of 30 items
    assert result["coverage@20"] == pytest.approx(21 / 30)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_cases=st.integers(1, 40),
    batch_size=st.integers(1, 50),
    levels=st.integers(2, 6),
)
def test_batching_does_not_change_results_and_ranks_match_a_sort(
    seed: int, n_cases: int, batch_size: int, levels: int
) -> None:
    rng = np.random.default_rng(seed)
    n_items = 25
    table = rng.integers(0, levels, size=(n_cases, n_items + 1)).astype(np.float32)  # ties
    targets = rng.integers(1, n_items + 1, size=n_cases)
    prefixes = [[i] for i in range(n_cases)]
    one = evaluate(FixedScores(table), prefixes, targets, batch_size=batch_size)
    every = evaluate(FixedScores(table), prefixes, targets, batch_size=n_cases)
    assert one.to_json_dict() == every.to_json_dict()
    for row, target in enumerate(targets):
        others = np.delete(table[row, 1:], target - 1)
        expected = 1 + int((others >= table[row, target]).sum())
        assert ranks_from_scores(table[row : row + 1], np.array([target]))[0] == expected


def test_mismatched_or_invalid_inputs_are_rejected() -> None:
    model = FixedScores(np.zeros((2, 6)))
    with pytest.raises(InvalidInputError):
        evaluate(model, [[0], [1]], [1])
    with pytest.raises(InvalidInputError):
        evaluate(model, [[0]], [0])
    with pytest.raises(InvalidInputError):
        evaluate(model, [[0]], [6])
    with pytest.raises(InvalidInputError):
        evaluate(model, [], [])
    with pytest.raises(InvalidInputError):
        evaluate(model, [[0]], [1], k_values=(0,))


def test_render_table_lists_each_model_and_metric() -> None:
    result = EvaluationResult({"hr@20": 0.5, "mrr@20": 0.125}, cases=8)
    table = render_table({"iknn": result, "pop": result})
    lines = table.splitlines()
    assert lines[0].split() == ["model", "hr@20", "mrr@20", "cases"]
    assert lines[1].split() == ["iknn", "0.5000", "0.1250", "8"]
    assert lines[2].startswith("pop")
