"""Neural session models, one file per model, and their registries.

``ARCHITECTURES`` maps an architecture name to its ``(ConfigClass, ModelClass)``;
``NEURAL_MODELS`` maps the same names to factories of untrained ``SessionRecommender``
objects: ``NEURAL_MODELS[name](settings=TrainSettings(...), **config_overrides)``.
``DEFAULT_MODEL`` is what ``streamrec train`` uses without ``--model``.

``TEXT_ARCHITECTURES`` are those that also read item text vectors
(``model.attach_text(vectors)``; ``NEURAL_MODELS[name](item_vectors=...)``).

Layering (each module imports only those before it): ``base`` (shared layers and loss)
-> ``training`` (the training loop) -> ``gru4rec``, ``sasrec``, ``sessattn`` (one model
each) -> ``sessattn_text`` (SessAttn with item text) -> ``recommender`` (the
``SessionRecommender`` adapter) -> this registry.

>>> sorted(ARCHITECTURES), DEFAULT_MODEL, TEXT_ARCHITECTURES
(['gru4rec', 'sasrec', 'sessattn', 'sessattn_text'], 'sessattn', ('sessattn_text',))
>>> build_model("gru4rec", n_items=10, dim=8).config.n_items
10
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from models.neural.base import SessionModel
from models.neural.gru4rec import GRU4Rec, GRU4RecConfig
from models.neural.recommender import NeuralRecommender
from models.neural.sasrec import SASRec, SASRecConfig
from models.neural.sessattn import SessAttn, SessAttnConfig
from models.neural.sessattn_text import SessAttnText, SessAttnTextConfig
from models.neural.training import TrainSettings

ARCHITECTURES: dict[str, tuple[type, type[SessionModel]]] = {
    "sessattn": (SessAttnConfig, SessAttn),
    "gru4rec": (GRU4RecConfig, GRU4Rec),
    "sasrec": (SASRecConfig, SASRec),
    "sessattn_text": (SessAttnTextConfig, SessAttnText),
}
DEFAULT_MODEL = "sessattn"
TEXT_ARCHITECTURES = ("sessattn_text",)


def build_model(name: str, n_items: int, **overrides: Any) -> SessionModel:
    """A fresh model of architecture ``name`` for ``n_items`` items."""
    config_cls, model_cls = ARCHITECTURES[name]
    return model_cls(config_cls(n_items=n_items, **overrides))


class _Factory:
    """``NEURAL_MODELS[name](settings=None, **config_overrides)`` -> untrained recommender."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__doc__ = f"An untrained {name} recommender (config overrides as keywords)."

    def __call__(
        self,
        settings: TrainSettings | None = None,
        item_vectors: npt.NDArray[np.floating] | None = None,
        **overrides: Any,
    ) -> NeuralRecommender:
        return NeuralRecommender(
            self.name, partial(build_model, self.name), settings, item_vectors=item_vectors,
            **overrides,
        )


NEURAL_MODELS: dict[str, Callable[..., NeuralRecommender]] = {
    name: _Factory(name) for name in ARCHITECTURES
}

TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "sessattn": {"dim": 16, "n_heads": 2, "max_seq_len": 8, "neighbors": 4},
    "gru4rec": {"dim": 16, "max_seq_len": 8},
    "sasrec": {"dim": 16, "n_heads": 2, "n_layers": 1, "max_seq_len": 8},
    "sessattn_text": {"dim": 16, "n_heads": 2, "max_seq_len": 8, "neighbors": 4, "text_dim": 8},
}
"""Tiny configurations for fast tests, e.g. the protocol contract suite:
``partial(NEURAL_MODELS[n], settings=TINY_SETTINGS, **TINY_CONFIGS[n])``."""

TINY_SETTINGS = TrainSettings(max_epochs=3, batch_size=16, progress=False)
"""Training settings that go with :data:`TINY_CONFIGS`."""

__all__ = [
    "ARCHITECTURES", "DEFAULT_MODEL", "NEURAL_MODELS", "TEXT_ARCHITECTURES", "TINY_CONFIGS",
    "TINY_SETTINGS",
    "NeuralRecommender", "TrainSettings", "build_model",
]
