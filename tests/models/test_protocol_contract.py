"""The ``SessionRecommender`` contract, run against every factory in
``conftest.contract_factories``: baselines, neural models, the exported ONNX artifact and
the re-indexing wrapper (no exemption list)."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable

import numpy as np
import pytest

from models.errors import InvalidInputError, NotFittedError
from models.protocol import SessionRecommender, top_k
from tests.models.conftest import TINY_N_ITEMS

Factory = Callable[[], SessionRecommender]


def fitted(factory: Factory, sessions: list[list[int]]) -> SessionRecommender:
    model = factory()
    model.fit(sessions, TINY_N_ITEMS)
    return model


def test_implements_the_protocol(recommender_factory: Factory) -> None:
    model = recommender_factory()
    assert isinstance(model, SessionRecommender)
    assert isinstance(model.name, str) and model.name


def test_scoring_before_fit_raises_not_fitted(recommender_factory: Factory) -> None:
    with pytest.raises(NotFittedError):
        recommender_factory().score([[1, 2]])


def test_scores_cover_the_catalogue_with_column_0_lowest(
    recommender_factory: Factory, tiny_sessions: list[list[int]], tiny_prefixes: list[list[int]]
) -> None:
    scores = fitted(recommender_factory, tiny_sessions).score(tiny_prefixes)
    assert scores.shape == (len(tiny_prefixes), TINY_N_ITEMS + 1)
    assert scores.dtype == np.float32
    assert np.isfinite(scores[:, 1:]).all()
    assert (scores[:, :1] < scores[:, 1:].min(axis=1, keepdims=True)).all()


def test_same_data_gives_same_output(
    recommender_factory: Factory, tiny_sessions: list[list[int]], tiny_prefixes: list[list[int]]
) -> None:
    first = fitted(recommender_factory, tiny_sessions).score(tiny_prefixes)
    second = fitted(recommender_factory, tiny_sessions).score(tiny_prefixes)
    np.testing.assert_array_equal(first, second)


def test_rows_are_scored_independently_of_the_batch(
    recommender_factory: Factory, tiny_sessions: list[list[int]], tiny_prefixes: list[list[int]]
) -> None:
    model = fitted(recommender_factory, tiny_sessions)
    batch = model.score(tiny_prefixes)
    one_by_one = np.vstack([model.score([p]) for p in tiny_prefixes])
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-5, atol=1e-6)


def test_scoring_mutates_neither_inputs_nor_model(
    recommender_factory: Factory, tiny_sessions: list[list[int]], tiny_prefixes: list[list[int]]
) -> None:
    model = fitted(recommender_factory, tiny_sessions)
    prefixes_before, state_before = copy.deepcopy(tiny_prefixes), pickle.dumps(model)
    first = model.score(tiny_prefixes)
    model.score([[2, 3, 4]] * 3)
    model.rank(tiny_prefixes, k=5, exclude=[[1]] * len(tiny_prefixes))
    assert tiny_prefixes == prefixes_before
    assert pickle.dumps(model) == state_before
    np.testing.assert_array_equal(model.score(tiny_prefixes), first)


def test_fit_does_not_mutate_sessions(
    recommender_factory: Factory, tiny_sessions: list[list[int]]
) -> None:
    before = copy.deepcopy(tiny_sessions)
    fitted(recommender_factory, tiny_sessions)
    assert tiny_sessions == before


def test_survives_pickle_round_trip(
    recommender_factory: Factory, tiny_sessions: list[list[int]], tiny_prefixes: list[list[int]]
) -> None:
    model = fitted(recommender_factory, tiny_sessions)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.score(tiny_prefixes), model.score(tiny_prefixes))


def test_rank_is_top_k_of_score_without_0_or_excluded(
    recommender_factory: Factory, tiny_sessions: list[list[int]], tiny_prefixes: list[list[int]]
) -> None:
    model = fitted(recommender_factory, tiny_sessions)
    exclude = [p[-1:] for p in tiny_prefixes]
    ranked = model.rank(tiny_prefixes, k=10, exclude=exclude)
    assert ranked.shape == (len(tiny_prefixes), 10) and ranked.dtype == np.int64
    assert (ranked >= 1).all() and (ranked <= TINY_N_ITEMS).all()
    for row, excluded in zip(ranked, exclude, strict=True):
        assert not set(row.tolist()) & set(excluded)
        assert len(set(row.tolist())) == len(row)
    expected = top_k(model.score(tiny_prefixes), 10, exclude)
    np.testing.assert_array_equal(ranked, expected)


def test_rank_caps_k_at_the_catalogue(
    recommender_factory: Factory, tiny_sessions: list[list[int]]
) -> None:
    ranked = fitted(recommender_factory, tiny_sessions).rank([[1, 2]], k=TINY_N_ITEMS + 10)
    assert sorted(ranked[0].tolist()) == list(range(1, TINY_N_ITEMS + 1))


def test_oov_items_and_tuples_are_accepted(
    recommender_factory: Factory, tiny_sessions: list[list[int]]
) -> None:
    model = fitted(recommender_factory, tiny_sessions)
    scores = model.score([(0, 3, 0), (4, 5)])
    assert scores.shape == (2, TINY_N_ITEMS + 1)


def test_item_index_beyond_the_catalogue_is_rejected(
    recommender_factory: Factory, tiny_sessions: list[list[int]]
) -> None:
    model = fitted(recommender_factory, tiny_sessions)
    with pytest.raises(InvalidInputError):
        model.score([[1, TINY_N_ITEMS + 1]])
