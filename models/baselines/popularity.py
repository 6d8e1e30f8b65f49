"""POP: recommend the items seen most often in training, whatever the session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.baselines._common import check_fit_args, flatten, require_fitted
from models.protocol import Session, SessionRecommender


@dataclass(frozen=True)
class PopularityConfig:
    """POP has nothing to tune; the config exists so every baseline looks alike."""

    count_repeats: bool = True  # count every occurrence (True) or sessions containing it


class Popularity(SessionRecommender):
    """Scores are training occurrence counts; identical for every prefix.

    >>> pop = Popularity()
    >>> pop.fit([[1, 2], [2, 3], [2, 3]], n_items=3)
    >>> pop.rank([[1]], k=2).tolist()
    [[2, 3]]
    """

    name = "pop"

    def __init__(self, config: PopularityConfig | None = None) -> None:
        self.config = config or PopularityConfig()
        self._counts: npt.NDArray[np.float32] | None = None  # (n_items + 1,)

    def fit(self, sessions: Sequence[Session], n_items: int) -> None:
        check_fit_args(sessions, n_items, self.name)
        if not self.config.count_repeats:
            sessions = [sorted(set(s)) for s in sessions]
        items, _ = flatten(sessions, n_items)
        counts = np.bincount(items, minlength=n_items + 1).astype(np.float32)
        counts[0] = -np.inf
        self._counts = counts

    def score(self, prefixes: Sequence[Session]) -> npt.NDArray[np.float32]:
        counts = require_fitted(self._counts, self.name)
        flatten(prefixes, len(counts) - 1, "prefix")  # validates indices
        return np.tile(counts, (len(prefixes), 1))
