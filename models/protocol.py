"""The one interface every recommender implements, and the one ranking rule.

Baselines, neural models, the ONNX artifact the stream serves and the evaluation's
re-indexing wrapper all derive from :class:`SessionRecommender`, so the evaluation harness
treats them alike. Item indices are dense ``1..n_items``; ``0`` is padding and
out-of-vocabulary and is never recommended.

:func:`top_k` is the only top-k in streamrec: ``SessionRecommender.rank``, the stream's
``OnnxScorer.recommend``, the evaluation's coverage and the export's parity check all order
items with it, so online serving and offline evaluation break ties the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

from models.errors import InvalidInputError

Session = Sequence[int]
"""Item indices of one session (or one user's history), oldest first."""

Scores = npt.NDArray[np.floating[Any]]
"""``(B, n_items + 1)`` score matrix; column 0 is padding/OOV."""

_CANDIDATES_PER_ITEM = 64
"""Fast path of :func:`top_k`: a row keeping more candidates than this many per wanted item
has heavy ties at the bound and is ranked by the exact path instead."""


class SessionRecommender(ABC):
    """Fit on sessions, score prefixes against the whole catalogue, rank.

    Subclasses implement :meth:`fit` and :meth:`score`; :meth:`rank` is :func:`top_k` of
    the scores, the same ranking the stream serves.

    >>> class LastItem(SessionRecommender):
    ...     name = "last-item"
    ...     def fit(self, sessions, n_items):
    ...         self.n_items = n_items
    ...     def score(self, prefixes):
    ...         out = np.zeros((len(prefixes), self.n_items + 1), dtype=np.float32)
    ...         out[:, 0] = -np.inf
    ...         for row, prefix in enumerate(prefixes):
    ...             out[row, prefix[-1]] = 1.0
    ...         return out
    >>> rec = LastItem()
    >>> rec.fit([[1, 2, 3]], n_items=5)
    >>> rec.rank([[4], [2]], k=3).tolist()  # the zeros tie: lower index first
    [[4, 1, 2], [2, 1, 3]]
    >>> rec.rank([[4]], k=3, exclude=[[1]]).tolist()
    [[4, 2, 3]]
    """

    name: str
    """Short model name (``"sknn"``, ``"sessattn"``, a model directory's name)."""

    rank_batch_size: int = 1024
    """Prefixes :meth:`rank` scores at once: bounds its memory to about
    ``rank_batch_size * (n_items + 1) * 4`` bytes of scores."""

    @abstractmethod
    def fit(self, sessions: Sequence[Session], n_items: int) -> None:
        """Learn from training sessions whose items are indices in ``1..n_items``."""

    @abstractmethod
    def score(self, prefixes: Sequence[Session]) -> npt.NDArray[np.float32]:
        """Scores of every item for every prefix: shape ``(len(prefixes), n_items + 1)``.

        Column 0 (padding/OOV) must hold ``-inf`` or a value below every real score. Raises
        :class:`~models.errors.NotFittedError` before ``fit``. Never mutates ``self`` or
        ``prefixes``.
        """

    def rank(
        self,
        prefixes: Sequence[Session],
        k: int,
        exclude: Sequence[Collection[int]] | None = None,
    ) -> npt.NDArray[np.int64]:
        """Top-``k`` item indices per prefix, best first: :func:`top_k` of :meth:`score`,
        with ``exclude[i]`` ranked last for row ``i``. Shape ``(len(prefixes), min(k,
        n_items))``."""
        if k < 1:
            raise InvalidInputError(f"k must be >= 1, got {k}")
        if exclude is not None and len(exclude) != len(prefixes):
            raise InvalidInputError(
                f"exclude has {len(exclude)} rows for {len(prefixes)} prefixes"
            )
        step = max(self.rank_batch_size, 1)
        if len(prefixes) <= step:
            return top_k(self.score(prefixes), k, exclude)
        return np.concatenate([
            top_k(
                self.score(prefixes[start : start + step]),
                k,
                None if exclude is None else exclude[start : start + step],
            )
            for start in range(0, len(prefixes), step)
        ])


def check_item_range(prefixes: Sequence[Session], n_items: int) -> None:
    """Raise :class:`~models.errors.InvalidInputError` when a prefix holds an index outside
    ``0..n_items``.

    >>> check_item_range([[0, 3], []], n_items=3)
    >>> check_item_range([[1, 4]], n_items=3)
    Traceback (most recent call last):
    ...
    models.errors.InvalidInputError: item index outside 0..3 in prefix [1, 4]
    """
    for prefix in prefixes:
        if len(prefix) and not 0 <= min(prefix) <= max(prefix) <= n_items:
            raise InvalidInputError(f"item index outside 0..{n_items} in prefix {list(prefix)}")


def top_k(
    scores: Scores,
    k: int,
    exclude: Sequence[Collection[int]] | None = None,
) -> npt.NDArray[np.int64]:
    """Best-first top-``k`` item indices (columns ``1..n_items``) of each score row.

    The tie rule, everywhere in streamrec: higher score first; equal scores by lower item
    index; NaN ranks like ``-inf``. Column 0 (padding/OOV) is never returned. Items in
    ``exclude[i]`` rank after every other item of row ``i`` (among themselves by index), so
    they appear only when fewer than ``k`` other items exist; indices outside
    ``1..n_items`` are ignored. ``k`` is capped at ``n_items``. ``scores`` is not modified.
    Cost: a few passes over ``scores``, no copy, unless a row holds NaN or heavy ties.

    >>> s = np.array([[9.0, 0.5, 0.9, 0.5, np.nan, 0.5]], dtype=np.float32)
    >>> top_k(s, 4).tolist()  # 0.9, then the three 0.5s by index; never column 0
    [[2, 1, 3, 5]]
    >>> top_k(s, 5, exclude=[[3]]).tolist()  # NaN (item 4) last but before excluded 3
    [[2, 1, 5, 4, 3]]
    >>> top_k(s, 99).shape  # k capped at the catalogue
    (1, 5)
    """
    if scores.ndim != 2:
        raise InvalidInputError(f"scores must be (B, n_items + 1), got shape {scores.shape}")
    n_rows, n_items = scores.shape[0], scores.shape[1] - 1
    if k < 1 or n_items < 1:
        raise InvalidInputError(f"k must be >= 1 and the catalogue non-empty (k={k})")
    k = min(k, n_items)
    items = scores[:, 1:]  # (B, n) view: column c holds item c + 1
    excluded = _excluded_keys(exclude, n_rows, n_items)  # sorted row * n + c
    out = np.empty((n_rows, k), dtype=np.int64)
    if n_rows == 0:
        return out
    per_row = np.bincount(excluded // n_items, minlength=n_rows) if excluded.size else None
    wanted = k + (int(per_row.max()) if per_row is not None else 0)
    exact = np.ones(n_rows, dtype=bool)
    if n_items >= 64 * wanted:
        exact = ~_top_k_by_bound(items, k, wanted, excluded, out)
    if exact.any():
        rows = np.flatnonzero(exact)
        out[rows] = _top_k_exact(items[rows], k, excluded, rows)
    return out + 1


def _excluded_keys(
    exclude: Sequence[Collection[int]] | None, n_rows: int, n_items: int
) -> npt.NDArray[np.int64]:
    """Sorted, unique ``row * n_items + (item - 1)`` of every excluded item in ``1..n``."""
    if exclude is None:
        return np.zeros(0, dtype=np.int64)
    if len(exclude) != n_rows:
        raise InvalidInputError(f"exclude has {len(exclude)} rows for {n_rows} score rows")
    lengths = np.fromiter((len(row) for row in exclude), dtype=np.int64, count=n_rows)
    items = np.fromiter(chain.from_iterable(exclude), dtype=np.int64, count=int(lengths.sum()))
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)
    known = (items >= 1) & (items <= n_items)
    return np.unique(rows[known] * n_items + items[known] - 1)


def _top_k_by_bound(
    items: Scores,
    k: int,
    wanted: int,
    excluded: npt.NDArray[np.int64],
    out: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """Fast path (no copy of the scores): fills ``out`` (0-based columns) for the rows it
    can rank exactly and returns which rows those are.

    Split each row into ``4 * wanted`` groups of columns. The ``wanted``-th largest group
    maximum ``b`` is a lower bound of the ``wanted``-th largest score, so every item that
    can be in the top ``k`` after removing at most ``wanted - k`` excluded items scores
    ``>= b``, and so does every item tied with one. Sorting those few candidates by
    (score, index) gives the exact answer. Rows with a NaN (the bound is unknown), too few
    candidates or heavy ties at the bound are left to :func:`_top_k_exact`.
    """
    n_rows, n_items = items.shape
    n_groups = 4 * wanted
    starts = np.arange(n_groups) * (n_items // n_groups)
    maxima = np.maximum.reduceat(items, starts, axis=1)  # (B, G); NaN if the group holds one
    bound = np.partition(maxima, n_groups - wanted, axis=1)[:, n_groups - wanted, None]  # (B, 1)
    keys = np.flatnonzero(items >= bound)  # row * n + c, row-major; NaN never passes
    if excluded.size:
        at = np.minimum(np.searchsorted(excluded, keys), len(excluded) - 1)
        keys = keys[excluded[at] != keys]
    rows = keys // n_items
    counts = np.bincount(rows, minlength=n_rows)  # (B,) candidates per row
    fast = (counts >= k) & (counts <= _CANDIDATES_PER_ITEM * wanted)
    fast &= ~np.isnan(maxima).any(axis=1)
    if not fast.any():
        return fast
    if not fast.all():
        keep = fast[rows]
        keys, rows = keys[keep], rows[keep]
        counts = np.where(fast, counts, 0)
    cols = keys - rows * n_items
    order = np.lexsort((cols, -items[rows, cols], rows))  # per row: best score, then index
    first = np.cumsum(counts) - counts  # (B,) where each row's candidates start
    out[fast] = cols[order[first[fast, None] + np.arange(k)]]  # (b, k)
    return fast


def _top_k_exact(
    items: Scores, k: int, excluded: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Exact path on a float64 copy of some rows (``rows``: their sorted numbers in the
    full matrix): 0-based top-``k`` columns by (rank key, index)."""
    n_sub, n_items = items.shape
    neg = np.negative(items, dtype=np.float64)  # (b, n): smaller is better
    neg[~(neg < np.inf)] = np.finfo(np.float64).max  # NaN, -inf: after every finite score...
    if excluded.size:
        ex_rows, ex_cols = np.divmod(excluded, n_items)
        at = np.minimum(np.searchsorted(rows, ex_rows), n_sub - 1)
        hit = rows[at] == ex_rows
        neg[at[hit], ex_cols[hit]] = np.inf  # ...but before excluded items
    kth = np.partition(neg, k - 1, axis=1)[:, k - 1, None]  # (b, 1) k-th smallest key
    better = neg < kth
    ties = neg == kth
    room = k - np.count_nonzero(better, axis=1, keepdims=True)  # ties to take, by index
    chosen = better | (ties & (np.cumsum(ties, axis=1) <= room))  # exactly k per row
    r, c = np.divmod(np.flatnonzero(chosen), n_items)
    order = np.lexsort((c, neg[r, c], r))
    return c[order].reshape(n_sub, k)
