from __future__ import annotations

import pytest

from models.baselines import SequentialRules, SequentialRulesConfig
from models.errors import InvalidInputError


def test_recommends_the_successor() -> None:
    sr = SequentialRules()
    sr.fit([[1, 2, 3], [4, 1, 2], [3, 1]], n_items=4)
    assert sr.rank([[3, 1]], k=1).tolist() == [[2]]
    assert sr.rank([[2]], k=1).tolist() == [[3]]


def test_rule_weights_decay_with_distance() -> None:
    sr = SequentialRules(SequentialRulesConfig(popularity_fallback=False))
    sr.fit([[1, 2, 3, 4]], n_items=5)
    scores = sr.score([[1]])[0]  # rules 1->2 (1), 1->3 (1/2), 1->4 (1/3), scaled by max
    assert scores[2:5].tolist() == pytest.approx([2.0, 1.5, 1 + 1 / 3])
    assert scores[1] == 0.0 and scores[5] == 0.0  # rules only point forward


def test_steps_limit_the_window() -> None:
    sr = SequentialRules(SequentialRulesConfig(steps=1, popularity_fallback=False))
    sr.fit([[1, 2, 3]], n_items=3)
    assert sr.score([[1]])[0, 3] == 0.0


def test_weighting_variants() -> None:
    for weighting, expected in (("same", 2.0), ("quadratic", 1.25), ("linear", 1 + 0.8 / 0.9)):
        sr = SequentialRules(SequentialRulesConfig(weighting=weighting, popularity_fallback=False))
        sr.fit([[1, 2, 3]], n_items=3)
        assert sr.score([[1]])[0, 3] == pytest.approx(expected)


def test_item_without_rules_falls_back_to_popularity() -> None:
    sr = SequentialRules()
    sr.fit([[1, 2], [3, 2], [4, 2]], n_items=4)
    assert sr.rank([[2]], k=1).tolist() == [[2]]  # 2 has no successor: most popular


def test_bad_config_is_rejected() -> None:
    with pytest.raises(InvalidInputError):
        SequentialRulesConfig(steps=0)
