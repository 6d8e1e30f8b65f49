"""Classic session-based baselines, all derived from ``models.protocol.SessionRecommender``.

``BASELINES`` maps the CLI's model names to factories building an unfitted recommender with
its default config (defaults were chosen on a validation split of training data only).
"""

from __future__ import annotations

from collections.abc import Callable

from models.baselines.item_knn import ItemKNN, ItemKNNConfig
from models.baselines.popularity import Popularity, PopularityConfig
from models.baselines.sequential_rules import SequentialRules, SequentialRulesConfig
from models.baselines.session_knn import SessionKNN, SessionKNNConfig
from models.protocol import SessionRecommender

BASELINES: dict[str, Callable[[], SessionRecommender]] = {
    "pop": Popularity,
    "iknn": ItemKNN,
    "sr": SequentialRules,
    "sknn": SessionKNN,
}

__all__ = [
    "BASELINES",
    "ItemKNN",
    "ItemKNNConfig",
    "Popularity",
    "PopularityConfig",
    "SequentialRules",
    "SequentialRulesConfig",
    "SessionKNN",
    "SessionKNNConfig",
]
