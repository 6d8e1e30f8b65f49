"""Helpers shared by the baselines: input checks, flattening, sparse matrices, fallback."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.errors import InvalidInputError, NotFittedError
from models.protocol import Session


def flatten(
    sessions: Sequence[Session], n_items: int, what: str = "session"
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(items, offsets)``: all items concatenated, and where each session starts
    (``len(sessions) + 1`` offsets). Raises when an item is outside ``0..n_items``."""
    lengths = np.fromiter((len(s) for s in sessions), dtype=np.int64, count=len(sessions))
    offsets = np.zeros(len(sessions) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    items = np.fromiter(chain.from_iterable(sessions), dtype=np.int64, count=int(offsets[-1]))
    if len(items) and (items.min() < 0 or items.max() > n_items):
        bad = items[(items < 0) | (items > n_items)][0]
        raise InvalidInputError(f"{what} item index {bad} outside 0..{n_items}")
    return items, offsets


def row_ids(offsets: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Row (session) number of every flattened item."""
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def last_items(prefixes: Sequence[Session], n_items: int) -> npt.NDArray[np.int64]:
    """Last non-zero (known) item of each prefix, 0 when there is none."""
    out = np.zeros(len(prefixes), dtype=np.int64)
    for row, prefix in enumerate(prefixes):
        for item in reversed(prefix):
            if item:
                out[row] = item
                break
    if len(out) and (out.min() < 0 or out.max() > n_items):
        raise InvalidInputError(f"prefix item index outside 0..{n_items}")
    return out


def binary_matrix(
    items: npt.NDArray[np.int64], offsets: npt.NDArray[np.int64], n_items: int
) -> sp.csr_matrix:
    """(n_sessions, n_items + 1) 0/1 matrix of which items each session contains."""
    matrix = sp.csr_matrix(
        (np.ones(len(items), dtype=np.float32), (row_ids(offsets), items)),
        shape=(len(offsets) - 1, n_items + 1),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def popularity_prior(items: npt.NDArray[np.int64], n_items: int) -> npt.NDArray[np.float32]:
    """Item occurrence counts scaled into ``[0, 1)`` (column 0 is 0)."""
    counts = np.bincount(items, minlength=n_items + 1).astype(np.float64)
    counts[0] = 0.0
    prior = (counts / (counts.max() + 1.0)).astype(np.float32)
    return np.minimum(prior, np.nextafter(np.float32(1.0), np.float32(0.0)))


def tiered_scores(
    primary: npt.NDArray[np.floating], prior: npt.NDArray[np.float32] | None
) -> npt.NDArray[np.float32]:
    """Final (B, n_items + 1) scores: items with a positive primary score rank above all
    others, ordered by it (scaled into ``(1, 2]`` per row); the rest are ordered by ``prior``
    (in ``[0, 1)``) or tied at 0 when ``prior`` is None. Column 0 is ``-inf``."""
    primary = np.asarray(primary, dtype=np.float32)  # (B, n + 1)
    row_max = primary.max(axis=1, keepdims=True)
    out = primary * (1.0 / np.where(row_max > 0, row_max, 1.0)).astype(np.float32)
    out += 1.0
    fallback = np.float32(0.0) if prior is None else prior
    np.copyto(out, fallback, where=primary <= 0)
    out[:, 0] = -np.inf
    return out


T = TypeVar("T")


def require_fitted(state: T | None, name: str) -> T:
    """The fitted state, or :class:`NotFittedError` when ``fit`` has not run."""
    if state is None:
        raise NotFittedError(f"{name}: call fit(sessions, n_items) before scoring")
    return state


def check_fit_args(sessions: Sequence[Session], n_items: int, name: str) -> None:
    """Reject an empty catalogue or an empty training set, naming the model."""
    if n_items < 1:
        raise InvalidInputError(f"{name}: n_items must be >= 1, got {n_items}")
    if len(sessions) == 0:
        raise InvalidInputError(f"{name}: no training sessions")
