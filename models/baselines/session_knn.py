"""Session-kNN with STAN's three decays (Garg et al., SIGIR 2019), vectorised with sparse
matrices.

For a prefix ``s`` of length ``L`` (item at position ``p`` weighted
``exp((p - L) / position_decay)``) and a training session ``n`` (a 0/1 item vector):

1. ``sim(s, n) = (w_s . 1_n) / sqrt(|s| |n|)`` (distinct items), times the neighbour's
   recency ``exp(-age(n) / (recency_decay * n_sessions))`` where ``age`` is how many training
   sessions came after ``n`` (training sessions are chronological, oldest first);
2. the ``k`` most similar sessions are the neighbours;
3. ``score(i) = sum over neighbours n containing i of sim(s, n) * exp(-|pos_n(i) - pos_n(a)|
   / neighbour_decay)`` where ``a`` is the item of ``s`` most recently seen that ``n`` shares.

Any decay set to ``None`` is switched off (weight 1), which gives plain S-KNN/V-SKNN-like
variants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.baselines._common import (
    binary_matrix,
    check_fit_args,
    flatten,
    popularity_prior,
    require_fitted,
    row_ids,
    tiered_scores,
)
from models.errors import InvalidInputError
from models.protocol import Session, SessionRecommender


@dataclass(frozen=True)
class SessionKNNConfig:
    """Defaults chosen on the validation split carved from Diginetica's training sessions."""

    k: int = 100  # neighbour sessions per prefix
    position_decay: float | None = 2.0  # lambda_1, in items: older prefix items count less
    recency_decay: float | None = 0.5  # lambda_2, as a fraction of the training sessions
    neighbour_decay: float | None = 2.0  # lambda_3, in items: items near the match count more
    popularity_fallback: bool = True  # order items no neighbour has by popularity

    def __post_init__(self) -> None:
        decays = (self.position_decay, self.recency_decay, self.neighbour_decay)
        if self.k < 1 or any(d is not None and d <= 0 for d in decays):
            raise InvalidInputError("SessionKNNConfig: k >= 1 and decays > 0 (or None)")


@dataclass(frozen=True)
class _State:
    n_items: int
    sessions: sp.csr_matrix  # (S, n + 1) 0/1, sorted indices; row = training session
    items_sessions: sp.csr_matrix  # (n + 1, S) its transpose
    positions: npt.NDArray[np.int64]  # (nnz,) 1-based last position of each (session, item)
    norms: npt.NDArray[np.float64]  # (S,) sqrt(distinct items)
    recency: npt.NDArray[np.float64]  # (S,) neighbour weight by age
    prior: npt.NDArray[np.float32] | None  # (n + 1,)


def _last_occurrences(
    items: npt.NDArray[np.int64], offsets: npt.NDArray[np.int64], n_items: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Sorted keys ``row * (n_items + 1) + item`` of the distinct known items of each row,
    and the 1-based position of each one's last occurrence."""
    rows = row_ids(offsets)
    positions = np.arange(len(items)) - offsets[rows] + 1
    keys = rows * (n_items + 1) + items
    known = items > 0
    keys, positions = keys[known][::-1], positions[known][::-1]  # last occurrence first
    unique_keys, first = np.unique(keys, return_index=True)
    return unique_keys, positions[first]


GATHER_MAX_ROWS = 8
"""Batches of at most this many prefixes find their neighbours by gathering the sessions of
each item (:func:`_gather_overlap`) rather than by a sparse product, whose cost has a term in
the number of training sessions per call (about 1.5 ms at Diginetica's 186k sessions: what a
served batch of one user paid)."""


def _gather_overlap(
    items_sessions: sp.csr_matrix, rows: npt.NDArray[np.int64], items: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """``(row, session, overlap)``: the weighted overlap of each query row with each training
    session sharing an item, sorted by row then session (the sparse product's entries)."""
    indptr = items_sessions.indptr
    starts, counts = indptr[items], indptr[items + 1] - indptr[items]
    query = np.repeat(np.arange(len(items)), counts)  # (E,) query entry of each hit
    offsets = np.arange(len(query)) - np.repeat(np.cumsum(counts) - counts, counts)
    sessions = items_sessions.indices[starts[query] + offsets].astype(np.int64)
    n_sessions = items_sessions.shape[1]
    unique, inverse = np.unique(rows[query] * n_sessions + sessions, return_inverse=True)
    overlap = np.bincount(inverse, weights=weights[query], minlength=len(unique))
    return unique // n_sessions, unique % n_sessions, overlap.astype(np.float64, copy=False)


class SessionKNN(SessionRecommender):
    """STAN-style session-kNN.

    >>> knn = SessionKNN()
    >>> knn.fit([[1, 2, 3], [4, 5], [1, 2, 3], [4, 6]], n_items=6)
    >>> knn.rank([[1, 2]], k=1, exclude=[[1, 2]]).tolist()
    [[3]]
    """

    name = "sknn"

    def __init__(self, config: SessionKNNConfig | None = None) -> None:
        self.config = config or SessionKNNConfig()
        self._state: _State | None = None

    def fit(self, sessions: Sequence[Session], n_items: int) -> None:
        check_fit_args(sessions, n_items, self.name)
        cfg = self.config
        items, offsets = flatten(sessions, n_items)
        x = binary_matrix(items, offsets, n_items)  # (S, n + 1)
        x.sort_indices()
        _, positions = _last_occurrences(items, offsets, n_items)  # aligned with x's entries
        n_sessions = len(sessions)
        age = (n_sessions - 1 - np.arange(n_sessions)).astype(np.float64)
        recency = (
            np.ones(n_sessions)
            if cfg.recency_decay is None
            else np.exp(-age / (cfg.recency_decay * n_sessions))
        )
        self._state = _State(
            n_items=n_items,
            sessions=x,
            items_sessions=x.T.tocsr(),
            positions=positions,
            norms=np.sqrt(np.diff(x.indptr)).astype(np.float64),
            recency=recency,
            prior=popularity_prior(items, n_items) if cfg.popularity_fallback else None,
        )

    def _neighbours(
        self,
        state: _State,
        keys: npt.NDArray[np.int64],  # sorted row * (n + 1) + item of each distinct item
        qpos: npt.NDArray[np.int64],  # its last 1-based position in the prefix
        lengths: npt.NDArray[np.int64],  # (B,) prefix lengths
        n_rows: int,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """``(row, session, weight)`` of the top-``k`` neighbours of each prefix row."""
        cfg, width = self.config, state.n_items + 1
        rows, items = keys // width, keys % width
        weights = (
            np.ones(len(keys))
            if cfg.position_decay is None
            else np.exp((qpos - lengths[rows]) / cfg.position_decay)
        )
        if n_rows <= GATHER_MAX_ROWS:
            r, c, overlap = _gather_overlap(state.items_sessions, rows, items, weights)
        else:
            query = sp.csr_matrix((weights, (rows, items)), shape=(n_rows, width))
            sim = (query @ state.items_sessions).tocoo()  # (B, S) weighted overlap
            r, c = sim.row.astype(np.int64), sim.col.astype(np.int64)
            overlap = np.asarray(sim.data, dtype=np.float64)
        n_distinct = np.bincount(rows, minlength=n_rows)
        v = overlap / (np.sqrt(n_distinct[r]) * state.norms[c]) * state.recency[c]
        order = np.lexsort((-c, -v, r))  # per row: best first, ties -> most recent
        r, c, v = r[order], c[order], v[order]
        row_start = np.searchsorted(r, np.arange(n_rows))
        keep = np.arange(len(r)) - row_start[r] < cfg.k
        return r[keep], c[keep], v[keep]

    def score(self, prefixes: Sequence[Session]) -> npt.NDArray[np.float32]:
        state = require_fitted(self._state, self.name)
        return tiered_scores(self.neighbour_scores(prefixes), state.prior)

    def neighbour_scores(self, prefixes: Sequence[Session]) -> npt.NDArray[np.float64]:
        """The neighbourhood's raw scores ``(B, n_items + 1)`` (step 3 of the module doc):
        positive for items some neighbour holds, 0 for the rest, before :meth:`score` ranks
        the rest by popularity."""
        state = require_fitted(self._state, self.name)
        width = state.n_items + 1
        keys, values = self.neighbour_entries(prefixes)
        flat = np.bincount(keys, weights=values, minlength=len(prefixes) * width)
        return np.asarray(flat, dtype=np.float64).reshape(len(prefixes), width)  # (B, n + 1)

    def neighbour_entries(
        self, prefixes: Sequence[Session]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """:meth:`neighbour_scores` in sparse form: ``(keys, values)``, the sorted distinct
        keys ``row * (n_items + 1) + item`` of the positive scores and the scores. What
        ``models.neighbourhood`` serves: no dense ``(B, n_items + 1)`` table is built."""
        state = require_fitted(self._state, self.name)
        width, n_rows = state.n_items + 1, len(prefixes)
        items, offsets = flatten(prefixes, state.n_items, "prefix")
        keys, qpos = _last_occurrences(items, offsets, state.n_items)
        r, c, v = self._neighbours(state, keys, qpos, np.diff(offsets), n_rows)
        x = state.sessions
        if self.config.neighbour_decay is None:
            neighbours = sp.csr_matrix((v, (r, c)), shape=(n_rows, x.shape[0]))
            product = (neighbours @ x).tocoo()  # (B, n + 1), duplicates summed
            flat_keys = product.row.astype(np.int64) * width + product.col
            order = np.argsort(flat_keys, kind="stable")
            sorted_keys: npt.NDArray[np.int64] = flat_keys[order].astype(np.int64)
            return sorted_keys, np.asarray(product.data, dtype=np.float64)[order]
        # expand every (row, neighbour) pair into the neighbour's distinct items
        counts = np.diff(x.indptr)[c]  # (P,) >= 1: a neighbour shares an item
        pair = np.repeat(np.arange(len(c)), counts)  # (E,)
        pair_start = np.cumsum(counts) - counts
        entry = x.indptr[c][pair] + np.arange(len(pair)) - pair_start[pair]
        entry_items, entry_pos = x.indices[entry].astype(np.int64), state.positions[entry]
        # position in the prefix of each entry's item (0 = not in the prefix)
        entry_keys = r[pair] * width + entry_items
        found = np.searchsorted(keys, entry_keys).clip(max=max(len(keys) - 1, 0))
        in_prefix = keys[found] == entry_keys if len(keys) else np.zeros(len(pair), bool)
        prefix_pos = np.where(in_prefix, qpos[found] if len(keys) else 0, 0)
        # anchor: the shared item seen most recently in the prefix (unique per pair)
        best = np.maximum.reduceat(prefix_pos, pair_start) if len(pair) else prefix_pos
        anchors = np.flatnonzero((prefix_pos == best[pair]) & (prefix_pos > 0))
        anchor_pos = np.zeros(len(c), dtype=np.int64)
        anchor_pos[pair[anchors]] = entry_pos[anchors]
        decay = np.exp(-np.abs(entry_pos - anchor_pos[pair]) / self.config.neighbour_decay)
        unique_keys, inverse = np.unique(entry_keys, return_inverse=True)
        values = np.bincount(inverse, weights=v[pair] * decay, minlength=len(unique_keys))
        return unique_keys.astype(np.int64, copy=False), values.astype(np.float64, copy=False)

    def state_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The fitted tables as named arrays (``models.neighbourhood`` saves them with
        :func:`numpy.savez`); :meth:`from_arrays` restores an equal model."""
        state = require_fitted(self._state, self.name)
        arrays: dict[str, npt.NDArray[Any]] = {
            "n_items": np.asarray(state.n_items, dtype=np.int64),
            "indptr": state.sessions.indptr.astype(np.int64),
            "indices": state.sessions.indices.astype(np.int32),
            "positions": state.positions.astype(np.int32),
            "recency": state.recency,
        }
        if state.prior is not None:
            arrays["prior"] = state.prior
        return arrays

    @classmethod
    def from_arrays(
        cls, config: SessionKNNConfig, arrays: Mapping[str, npt.NDArray[Any]]
    ) -> SessionKNN:
        """A fitted model from :meth:`state_arrays`' output (checked for consistency)."""
        try:
            n_items = int(arrays["n_items"])
            indptr = np.asarray(arrays["indptr"], dtype=np.int64)
            indices = np.asarray(arrays["indices"], dtype=np.int32)
            positions = np.asarray(arrays["positions"], dtype=np.int64)
            recency = np.asarray(arrays["recency"], dtype=np.float64)
        except KeyError as exc:
            raise InvalidInputError(f"session-kNN tables lack {exc}") from exc
        n_sessions = len(indptr) - 1
        consistent = (
            n_sessions >= 1 and len(recency) == n_sessions and int(indptr[-1]) == len(indices)
            and len(positions) == len(indices) and np.all(np.diff(indptr) >= 1)
            and (not len(indices) or (indices.min() >= 1 and indices.max() <= n_items))
        )
        if not consistent:
            raise InvalidInputError("session-kNN tables are inconsistent (sizes or item range)")
        x = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr),
                          shape=(n_sessions, n_items + 1))
        prior = arrays.get("prior")
        model = cls(config)
        model._state = _State(
            n_items=n_items, sessions=x, items_sessions=x.T.tocsr(), positions=positions,
            norms=np.sqrt(np.diff(indptr)).astype(np.float64), recency=recency,
            prior=None if prior is None else np.asarray(prior, dtype=np.float32),
        )
        return model
