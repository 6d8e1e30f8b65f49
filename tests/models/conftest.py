"""Fixtures for the ``models`` tests: tiny generated sessions and the recommender factories
the protocol contract suite (``test_protocol_contract.py``) runs against.

To put more recommenders under the contract, add fast (tiny-config) factories to
:func:`contract_factories`; every test taking ``recommender_factory`` then runs for them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from models.baselines import BASELINES
from models.neural import NEURAL_MODELS, TINY_CONFIGS, TINY_SETTINGS
from models.protocol import SessionRecommender

TINY_N_ITEMS = 30


def contract_factories() -> dict[str, Callable[[], SessionRecommender]]:
    """Test id -> factory of an unfitted recommender that fits the tiny data in < 1 s."""
    factories: dict[str, Callable[[], SessionRecommender]] = {
        f"baseline-{name}": factory for name, factory in BASELINES.items()
    }
    factories.update({
        f"neural-{name}": partial(NEURAL_MODELS[name], settings=TINY_SETTINGS,
                                  **TINY_CONFIGS[name])
        for name in NEURAL_MODELS
    })
    return factories


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "recommender_factory" in metafunc.fixturenames:
        factories = contract_factories()
        metafunc.parametrize(
            "recommender_factory", list(factories.values()), ids=list(factories)
        )


def make_sessions(n_sessions: int = 80, n_items: int = TINY_N_ITEMS, seed: int = 0) -> list[
    list[int]
]:
    """Sessions walking forward through short runs of consecutive items, plus noise."""
    rng = np.random.default_rng(seed)
    sessions = []
    for _ in range(n_sessions):
        start, length = int(rng.integers(1, n_items - 5)), int(rng.integers(2, 7))
        session = [start + i for i in range(length)]
        if rng.random() < 0.3:
            session.insert(int(rng.integers(0, length)), int(rng.integers(1, n_items + 1)))
        sessions.append(session)
    return sessions


@pytest.fixture
def tiny_sessions() -> list[list[int]]:
    return make_sessions()


@pytest.fixture
def tiny_prefixes() -> list[list[int]]:
    return [[1], [3, 4], [10, 11, 12], [29, 2, 7, 7], [5, 6, 7, 8, 9, 10, 11]]
