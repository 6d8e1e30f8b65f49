"""Fixtures for the ``models`` tests: tiny generated sessions, a tiny exported model
directory, and the recommender factories the protocol contract suite
(``test_protocol_contract.py``) runs against.

Every ``SessionRecommender`` in ``models`` has a factory in :func:`contract_factories`
(no exemption list): the baselines, the neural models, the ONNX artifact the stream serves
(``OnnxRecommender``) and the evaluation's ``ReindexedRecommender`` around it. To put a new
recommender under the contract, add a fast (tiny-config) factory there; every test taking
``recommender_factory`` then runs for it.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from models.baselines import BASELINES
from models.evaluation import ReindexedRecommender
from models.neural import NEURAL_MODELS, TINY_CONFIGS, TINY_SETTINGS
from models.protocol import SessionRecommender
from models.serving import OnnxRecommender
from models.vocabulary import Vocabulary

TINY_N_ITEMS = 30


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


@functools.cache
def tiny_model_dir() -> Path:
    """A model directory (identity vocabulary of ``TINY_N_ITEMS`` items) holding a tiny
    SessAttn trained on :func:`make_sessions`; built once per test process, on first use."""
    from models.model_dir_writer import write_model_dir  # PyTorch: only when needed

    root = Path(tempfile.mkdtemp(prefix="streamrec-tiny-model-"))
    atexit.register(shutil.rmtree, root, True)
    recommender = NEURAL_MODELS["sessattn"](settings=TINY_SETTINGS, **TINY_CONFIGS["sessattn"])
    recommender.fit(make_sessions(), TINY_N_ITEMS)
    assert recommender.model is not None
    write_model_dir(
        root / "model", recommender.model, Vocabulary.identity(TINY_N_ITEMS),
        training_data_fingerprint="tiny", name="tiny-onnx",
    )
    return root / "model"


def onnx_recommender() -> OnnxRecommender:
    """The exported tiny model, unfitted (``fit`` binds it to the catalogue)."""
    return OnnxRecommender(tiny_model_dir(), device="cpu")


def reindexed_onnx_recommender() -> ReindexedRecommender:
    """The exported tiny model seen through a vocabulary listing its items in reverse."""
    inner = onnx_recommender()
    model_vocabulary = inner.scorer.vocabulary
    outer = Vocabulary(tuple(reversed(model_vocabulary.items)))
    return ReindexedRecommender(inner, model_vocabulary, outer)


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
    factories["onnx"] = onnx_recommender
    factories["reindexed-onnx"] = reindexed_onnx_recommender
    return factories


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "recommender_factory" in metafunc.fixturenames:
        factories = contract_factories()
        metafunc.parametrize(
            "recommender_factory", list(factories.values()), ids=list(factories)
        )


@pytest.fixture
def tiny_sessions() -> list[list[int]]:
    return make_sessions()


@pytest.fixture
def tiny_prefixes() -> list[list[int]]:
    return [[1], [3, 4], [10, 11, 12], [29, 2, 7, 7], [5, 6, 7, 8, 9, 10, 11]]
