"""Fixtures for the ``models`` tests: tiny generated sessions, a tiny exported model
directory, and the recommender factories the protocol contract suite
(``test_protocol_contract.py``) runs against.

Every ``SessionRecommender`` in ``models`` has a factory in :func:`contract_factories`
(no exemption list): the baselines (text-kNN on tiny random text vectors), the neural
models (text-aware ones with and without text), the ONNX artifact the stream serves
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

from models.baselines import BASELINES, TEXT_BASELINES
from models.evaluation import ReindexedRecommender
from models.neural import NEURAL_MODELS, TEXT_ARCHITECTURES, TINY_CONFIGS, TINY_SETTINGS
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


def tiny_text_vectors(n_items: int = TINY_N_ITEMS, dim: int = 8, seed: int = 0) -> np.ndarray:
    """``(n_items + 1, dim)`` unit "text" vectors, close for neighbouring items (a smooth
    random walk); row 0 and every fifth item have no text (zero rows)."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(size=(n_items + 1, dim)), axis=0).astype(np.float32)
    vectors = walk / np.linalg.norm(walk, axis=1, keepdims=True)
    vectors[::5] = 0.0
    return vectors


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


@functools.cache
def tiny_blended_model_dir() -> Path:
    """:func:`tiny_model_dir` with a blend (``models.blend``) of fixed weights, every term
    on, its tables fitted on :func:`make_sessions`."""
    import json

    from models.neighbourhood import Neighbourhood, Transitions

    out = tiny_model_dir().parent / "blended"
    shutil.copytree(tiny_model_dir(), out)
    meta = json.loads((out / "meta.json").read_text())
    meta["blend"] = {
        "weights": {"knn": 0.5, "rules": 0.2, "repeat": 0.1, "repeat_decay": 2.0},
        "knn": Neighbourhood.fit(make_sessions(), TINY_N_ITEMS).save(out),
        "rules": Transitions.fit(make_sessions(), TINY_N_ITEMS).save(out),
    }
    (out / "meta.json").write_text(json.dumps(meta))
    return out


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
        f"baseline-{name}": partial(factory, tiny_text_vectors())
        for name, factory in TEXT_BASELINES.items()
    })
    factories.update({
        f"neural-{name}": partial(NEURAL_MODELS[name], settings=TINY_SETTINGS,
                                  **TINY_CONFIGS[name])
        for name in NEURAL_MODELS
    })
    factories.update({  # text-aware models also with text (above: without, = id-only)
        f"neural-{name}-text": partial(NEURAL_MODELS[name], settings=TINY_SETTINGS,
                                       item_vectors=tiny_text_vectors(), **TINY_CONFIGS[name])
        for name in TEXT_ARCHITECTURES
    })
    factories["onnx"] = onnx_recommender
    factories["onnx-blend"] = lambda: OnnxRecommender(tiny_blended_model_dir(), device="cpu")
    factories["reindexed-onnx"] = reindexed_onnx_recommender
    return factories


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "recommender_factory" in metafunc.fixturenames:
        factories = contract_factories()
        metafunc.parametrize(
            "recommender_factory", list(factories.values()), ids=list(factories)
        )


RECBOLE_HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"


def prefix_rows(user: str, sequence: list[int], max_len: int = 50) -> list[str]:
    """RecBole's training rows of one user: every prefix (last ``max_len`` items), newest
    first."""
    rows = []
    for end in range(1, len(sequence)):
        history = sequence[max(0, end - max_len) : end]
        rows.append(f"{user}\t{' '.join(map(str, history))}\t{sequence[end]}\n")
    return rows[::-1]


def write_recbole_dataset(
    directory: Path, sequences: dict[str, list[int]], name: str = "Tiny", n_items: int = 5
) -> Path:
    """A dataset whose users' full sequences are ``sequences`` (0-based item indices): all
    but the last two items train, the second-to-last validates, the last tests."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = [f"I{i:02d}" for i in range(n_items)]
    (directory / f"{name}.item2index").write_text("".join(f"{a}\t{i}\n" for i, a in enumerate(ids)))
    texts = {a: f"Title {a}. Lab > Tools. Brand." for a in ids if a != "I02"}  # I02: none
    (directory / f"{name}.text").write_text(
        "item_id:token\ttext:token_seq\n" + "".join(f"{a}\t{t}\n" for a, t in texts.items())
        + "UNKNOWN\tnot in the catalogue\n"
    )
    train, valid, test = [RECBOLE_HEADER], [RECBOLE_HEADER], [RECBOLE_HEADER]
    for user, seq in sequences.items():
        train += prefix_rows(user, seq[:-2])
        valid.append(f"{user}\t{' '.join(map(str, seq[:-2][-50:]))}\t{seq[-2]}\n")
        test.append(f"{user}\t{' '.join(map(str, seq[:-1][-50:]))}\t{seq[-1]}\n")
    for part, rows in (("train", train), ("valid", valid), ("test", test)):
        (directory / f"{name}.{part}.inter").write_text("".join(rows))
    return directory


@pytest.fixture
def tiny_sessions() -> list[list[int]]:
    return make_sessions()


@pytest.fixture
def tiny_prefixes() -> list[list[int]]:
    return [[1], [3, 4], [10, 11, 12], [29, 2, 7, 7], [5, 6, 7, 8, 9, 10, 11]]
