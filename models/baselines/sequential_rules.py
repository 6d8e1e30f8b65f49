"""SR, sequential rules (Ludewig & Jannach, 2018): rules ``a -> b`` for every ``b`` that
follows ``a`` within ``steps`` positions of a training session, weighted by a decreasing
function of the distance (``1 / d`` by default); a prefix is scored by the rules of its last
item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.baselines._common import (
    check_fit_args,
    flatten,
    last_items,
    popularity_prior,
    require_fitted,
    row_ids,
    tiered_scores,
)
from models.errors import InvalidInputError
from models.protocol import Session, SessionRecommender

Weighting = Literal["div", "linear", "quadratic", "same"]


@dataclass(frozen=True)
class SequentialRulesConfig:
    """Defaults chosen on the validation split carved from Diginetica's training sessions."""

    steps: int = 10  # how many following positions create a rule
    weighting: Weighting = "div"  # weight of distance d: 1/d, 1-0.1d, 1/d^2 or 1
    popularity_fallback: bool = True  # order items without a rule by popularity

    def __post_init__(self) -> None:
        if self.steps < 1 or self.weighting not in ("div", "linear", "quadratic", "same"):
            raise InvalidInputError("SequentialRulesConfig: steps >= 1, known weighting")


def _weight(distance: int, weighting: Weighting) -> float:
    if weighting == "div":
        return 1.0 / distance
    if weighting == "linear":
        return max(1.0 - 0.1 * distance, 0.0)
    if weighting == "quadratic":
        return 1.0 / distance**2
    return 1.0


@dataclass(frozen=True)
class _State:
    n_items: int
    rules: sp.csr_matrix  # (n_items + 1, n_items + 1) weight of rule row -> column
    prior: npt.NDArray[np.float32] | None  # (n_items + 1,)


class SequentialRules(SessionRecommender):
    """Sequential rules scored from the last item of the prefix.

    >>> sr = SequentialRules()
    >>> sr.fit([[1, 2, 3], [1, 2], [3, 1]], n_items=3)
    >>> sr.rank([[3, 1]], k=1).tolist()
    [[2]]
    """

    name = "sr"

    def __init__(self, config: SequentialRulesConfig | None = None) -> None:
        self.config = config or SequentialRulesConfig()
        self._state: _State | None = None

    def fit(self, sessions: Sequence[Session], n_items: int) -> None:
        check_fit_args(sessions, n_items, self.name)
        items, offsets = flatten(sessions, n_items)
        session = row_ids(offsets)  # (N,) session of each flattened item
        srcs, dsts, weights = [], [], []
        for d in range(1, self.config.steps + 1):
            same = session[d:] == session[:-d]  # pairs (t - d, t) inside one session
            w = _weight(d, self.config.weighting)
            if not same.any() or w <= 0:
                continue
            srcs.append(items[:-d][same])
            dsts.append(items[d:][same])
            weights.append(np.full(int(same.sum()), w, dtype=np.float64))
        if srcs:
            src, dst, weight = np.concatenate(srcs), np.concatenate(dsts), np.concatenate(weights)
        else:
            src = dst = np.zeros(0, dtype=np.int64)
            weight = np.zeros(0, dtype=np.float64)
        rules = sp.csr_matrix((weight, (src, dst)), shape=(n_items + 1, n_items + 1))
        rules.sum_duplicates()
        prior = popularity_prior(items, n_items) if self.config.popularity_fallback else None
        self._state = _State(n_items, rules, prior)

    def rule_matrix(self) -> sp.csr_matrix:
        """The fitted rules ``(n_items + 1, n_items + 1)``: row ``a``, column ``b`` holds the
        weight of ``a -> b`` (``models.neighbourhood`` serves them)."""
        return require_fitted(self._state, self.name).rules

    def score(self, prefixes: Sequence[Session]) -> npt.NDArray[np.float32]:
        state = require_fitted(self._state, self.name)
        last = last_items(prefixes, state.n_items)  # (B,)
        return tiered_scores(state.rules[last].toarray(), state.prior)  # (B, n + 1)
