"""The neighbourhood components a model directory may ship: session-kNN tables and
sequential rules computed at training time, scored with numpy/scipy on the scoring thread
(``models.blend`` adds their scores to the neural model's).

```
MODEL_DIR/knn/tables.npz   the training sessions as a sparse session x item matrix (CSR
                           indptr, indices), each item's last position in its session and
                           each session's recency weight (models.baselines.session_knn)
MODEL_DIR/knn/rules.npz    the sequential rules a -> b as a sparse item x item matrix (CSR
                           indptr, indices, data; models.baselines.sequential_rules)
```
Their configurations live in ``meta.json`` under ``blend.knn`` and ``blend.rules``.

Scores come back sparse, as ``(keys, values)`` with ``key = row * (n_items + 1) + item``:
on Diginetica's test prefixes the session-kNN scores about 150 items per user out of
43,097, so no dense table is built for it. Each row's values sum to 1 (a distribution over
the items its neighbours hold), so its weight in a blend does not depend on how many or how
similar the neighbours are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.baselines._common import last_items
from models.baselines.sequential_rules import SequentialRules, SequentialRulesConfig
from models.baselines.session_knn import SessionKNN, SessionKNNConfig
from models.errors import InvalidInputError, ModelDirectoryError

logger = logging.getLogger(__name__)

KNN_DIR = "knn"
TABLES_FILE = "tables.npz"
RULES_FILE = "rules.npz"

Entries = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
"""Sparse scores: sorted distinct keys ``row * (n_items + 1) + item`` and their values."""


def row_normalised(keys: npt.NDArray[np.int64], values: npt.NDArray[np.float64],
                   width: int, n_rows: int) -> npt.NDArray[np.float64]:
    """``values`` divided by their row's sum (rows with no entry have none).

    >>> row_normalised(np.array([1, 2, 5]), np.array([1.0, 3.0, 2.0]), 4, 2).tolist()
    [0.25, 0.75, 1.0]
    """
    rows = keys // width
    sums = np.bincount(rows, weights=values, minlength=n_rows)
    return values / sums[rows]


class Neighbourhood:
    """A fitted session-kNN, servable: fit, save into / load from a model directory, and
    score index histories sparsely (see the module doc).

    >>> hood = Neighbourhood.fit([[1, 2, 3], [2, 3, 4]], n_items=4)
    >>> keys, values = hood.entries([[2]])
    >>> keys.tolist(), [round(v, 3) for v in values.tolist()]
    ([1, 2, 3, 4], [0.08, 0.491, 0.298, 0.132])
    """

    def __init__(self, knn: SessionKNN, n_items: int) -> None:
        self.knn = knn
        self.n_items = n_items

    @property
    def config(self) -> SessionKNNConfig:
        return self.knn.config

    @classmethod
    def fit(cls, sessions: Sequence[Sequence[int]], n_items: int,
            config: SessionKNNConfig | None = None) -> Neighbourhood:
        """Fit on training sessions (item indices, oldest session first)."""
        knn = SessionKNN(config or SessionKNNConfig(popularity_fallback=False))
        knn.fit(sessions, n_items)
        return cls(knn, n_items)

    def entries(self, rows: Sequence[Sequence[int]]) -> Entries:
        """Sparse scores of index histories (0 entries are ignored), each row summing to 1;
        a history no training session shares an item with has no entry."""
        keys, values = self.knn.neighbour_entries(rows)
        keep = values > 0
        keys, values = keys[keep], values[keep]
        return keys, row_normalised(keys, values, self.n_items + 1, len(rows))

    def save(self, model_dir: Path) -> dict[str, Any]:
        """Write ``knn/tables.npz`` into ``model_dir``; returns the configuration for
        ``meta.json``'s ``blend.knn``."""
        directory = Path(model_dir) / KNN_DIR
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {k: v for k, v in self.knn.state_arrays().items() if k != "prior"}
        np.savez(directory / TABLES_FILE, **arrays)  # type: ignore[arg-type]
        return asdict(self.config)

    @classmethod
    def load(cls, model_dir: Path, config: dict[str, Any], n_items: int) -> Neighbourhood:
        """Read ``knn/tables.npz`` of ``model_dir`` with the configuration ``meta.json``
        recorded; :class:`ModelDirectoryError` when it is missing or does not fit."""
        path = Path(model_dir) / KNN_DIR / TABLES_FILE
        known = {f.name for f in fields(SessionKNNConfig)}
        try:
            knn_config = SessionKNNConfig(**{k: v for k, v in config.items() if k in known})
            with np.load(path, allow_pickle=False) as arrays:
                knn = SessionKNN.from_arrays(knn_config, dict(arrays))
        except (OSError, ValueError, InvalidInputError) as exc:
            raise ModelDirectoryError(f"cannot read the neighbourhood tables {path}: {exc}; "
                                      "re-run 'streamrec train' (or 'streamrec blend')") from exc
        tables_items = int(knn.state_arrays()["n_items"])
        if tables_items != n_items:
            raise ModelDirectoryError(f"{path} covers {tables_items} items, the model "
                                      f"{n_items}")
        return cls(knn, n_items)


class Transitions:
    """Sequential rules, servable: the rules of each history's last known item, as a
    distribution (sparse, like :class:`Neighbourhood`).

    >>> rules = Transitions.fit([[1, 2, 3], [1, 2]], n_items=3)
    >>> keys, values = rules.entries([[3, 1]])
    >>> keys.tolist(), [round(v, 3) for v in values.tolist()]
    ([2, 3], [0.8, 0.2])
    """

    def __init__(self, rules: sp.csr_matrix, config: SequentialRulesConfig) -> None:
        self.rules = rules  # (n + 1, n + 1)
        self.rules.sort_indices()
        self.config = config
        self.n_items = rules.shape[0] - 1

    @classmethod
    def fit(cls, sessions: Sequence[Sequence[int]], n_items: int,
            config: SequentialRulesConfig | None = None) -> Transitions:
        """Fit on training sessions (item indices)."""
        model = SequentialRules(config or SequentialRulesConfig(popularity_fallback=False))
        model.fit(sessions, n_items)
        return cls(model.rule_matrix().tocsr(), model.config)

    def entries(self, rows: Sequence[Sequence[int]]) -> Entries:
        """Sparse scores of index histories, each row summing to 1; a history whose last
        known item starts no rule (or with no known item) has no entry."""
        width = self.n_items + 1
        last = last_items(rows, self.n_items)  # (B,) 0: none
        picked = self.rules[last]  # (B, n + 1) CSR, sorted indices
        picked.sort_indices()
        row = np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(picked.indptr))
        keys = row * width + picked.indices.astype(np.int64)
        values = np.asarray(picked.data, dtype=np.float64)
        keep = (values > 0) & (last[row] > 0)
        keys, values = keys[keep], values[keep]
        return keys, row_normalised(keys, values, width, len(rows))

    def save(self, model_dir: Path) -> dict[str, Any]:
        """Write ``knn/rules.npz`` into ``model_dir``; returns the configuration for
        ``meta.json``'s ``blend.rules``."""
        directory = Path(model_dir) / KNN_DIR
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / RULES_FILE, indptr=self.rules.indptr.astype(np.int64),
                 indices=self.rules.indices.astype(np.int32),
                 data=self.rules.data.astype(np.float32))
        return asdict(self.config)

    @classmethod
    def load(cls, model_dir: Path, config: dict[str, Any], n_items: int) -> Transitions:
        """Read ``knn/rules.npz``; :class:`ModelDirectoryError` when missing or not fitting."""
        path = Path(model_dir) / KNN_DIR / RULES_FILE
        known = {f.name for f in fields(SequentialRulesConfig)}
        try:
            rules_config = SequentialRulesConfig(**{k: v for k, v in config.items()
                                                    if k in known})
            with np.load(path, allow_pickle=False) as arrays:
                indptr, indices, data = arrays["indptr"], arrays["indices"], arrays["data"]
            rules = sp.csr_matrix((data.astype(np.float64), indices, indptr),
                                  shape=(len(indptr) - 1, len(indptr) - 1))
        except (OSError, KeyError, ValueError, TypeError, InvalidInputError) as exc:
            raise ModelDirectoryError(f"cannot read the sequential rules {path}: {exc}; "
                                      "re-run 'streamrec train' (or 'streamrec blend')") from exc
        if rules.shape[0] != n_items + 1:
            raise ModelDirectoryError(f"{path} covers {rules.shape[0] - 1} items, the model "
                                      f"{n_items}")
        return cls(rules, rules_config)
