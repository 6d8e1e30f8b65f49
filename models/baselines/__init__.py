"""Classic session-based baselines, all derived from ``models.protocol.SessionRecommender``.

``BASELINES`` maps the CLI's model names to factories building an unfitted recommender with
its default config (defaults were chosen on a validation split of training data only);
``TEXT_BASELINES`` those that also need the item text vectors
(``factory(item_vectors, config=None)``, see ``models.text.item_vectors``).
``BASELINE_CONFIGS`` gives each name's config class, for overrides
(``streamrec evaluate --set``).
"""

from __future__ import annotations

from collections.abc import Callable

from models.baselines.item_knn import ItemKNN, ItemKNNConfig
from models.baselines.popularity import Popularity, PopularityConfig
from models.baselines.sequential_rules import SequentialRules, SequentialRulesConfig
from models.baselines.session_knn import SessionKNN, SessionKNNConfig
from models.baselines.text_knn import TextKNN, TextKNNConfig
from models.protocol import SessionRecommender

BASELINES: dict[str, Callable[[], SessionRecommender]] = {
    "pop": Popularity,
    "iknn": ItemKNN,
    "sr": SequentialRules,
    "sknn": SessionKNN,
}
TEXT_BASELINES: dict[str, Callable[..., SessionRecommender]] = {
    "textknn": TextKNN,
}
BASELINE_CONFIGS: dict[str, type] = {
    "pop": PopularityConfig,
    "iknn": ItemKNNConfig,
    "sr": SequentialRulesConfig,
    "sknn": SessionKNNConfig,
    "textknn": TextKNNConfig,
}

__all__ = [
    "BASELINES",
    "BASELINE_CONFIGS",
    "TEXT_BASELINES",
    "ItemKNN",
    "ItemKNNConfig",
    "Popularity",
    "PopularityConfig",
    "SequentialRules",
    "SequentialRulesConfig",
    "SessionKNN",
    "SessionKNNConfig",
    "TextKNN",
    "TextKNNConfig",
]
