"""Neural session models, one file per model, and their registries.

``ARCHITECTURES`` maps an architecture name to its ``(ConfigClass, ModelClass)``;
``NEURAL_MODELS`` maps the same names to factories of untrained ``SessionRecommender``
objects: ``NEURAL_MODELS[name](settings=TrainSettings(...), **config_overrides)``.
``DEFAULT_MODEL`` is what ``streamrec train`` uses without ``--model``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.neural.base import NeuralRecommender, SessionModel
from models.neural.gru4rec import GRU4Rec, GRU4RecConfig
from models.neural.sasrec import SASRec, SASRecConfig
from models.neural.sessattn import SessAttn, SessAttnConfig

ARCHITECTURES: dict[str, tuple[type, type[SessionModel]]] = {
    "sessattn": (SessAttnConfig, SessAttn),
    "gru4rec": (GRU4RecConfig, GRU4Rec),
    "sasrec": (SASRecConfig, SASRec),
}
DEFAULT_MODEL = "sessattn"


def build_model(name: str, n_items: int, **overrides: Any) -> SessionModel:
    """A fresh model of architecture ``name`` for ``n_items`` items."""
    config_cls, model_cls = ARCHITECTURES[name]
    return model_cls(config_cls(n_items=n_items, **overrides))


def _factory(name: str) -> Callable[..., NeuralRecommender]:
    def make(settings: Any = None, **overrides: Any) -> NeuralRecommender:
        return NeuralRecommender(
            name, lambda n_items: build_model(name, n_items, **overrides), settings
        )

    make.__doc__ = f"An untrained {name} recommender (config overrides as keywords)."
    return make


NEURAL_MODELS: dict[str, Callable[..., NeuralRecommender]] = {
    name: _factory(name) for name in ARCHITECTURES
}

__all__ = ["ARCHITECTURES", "DEFAULT_MODEL", "NEURAL_MODELS", "NeuralRecommender", "build_model"]
