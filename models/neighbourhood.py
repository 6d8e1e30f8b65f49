"""The neighbourhood component a model directory may ship: session-kNN tables computed at
training time, scored with numpy/scipy on the scoring thread (``models.blend`` adds its
scores to the neural model's).

```
MODEL_DIR/knn/tables.npz   the training sessions as a sparse session x item matrix (CSR
                           indptr, indices), each item's last position in its session and
                           each session's recency weight (models.baselines.session_knn)
```
Its configuration (``SessionKNNConfig``) lives in ``meta.json`` under ``blend.knn``.

Scores come back sparse, as ``(keys, values)`` with ``key = row * (n_items + 1) + item``:
at batch 256 on Diginetica a neighbourhood touches about 1,500 items per user out of
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

from models.baselines.session_knn import SessionKNN, SessionKNNConfig
from models.errors import InvalidInputError, ModelDirectoryError

logger = logging.getLogger(__name__)

KNN_DIR = "knn"
TABLES_FILE = "tables.npz"

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
    ([1, 2, 3, 4], [0.158, 0.342, 0.342, 0.158])
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
