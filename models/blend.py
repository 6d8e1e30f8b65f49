"""The served blend: a neural model's scores plus a neighbourhood and a repeat term.

For a history ``h`` and item ``i``::

    score(i) = softmax(logits)(i) + knn * N_h(i) + rules * S_h(i) + repeat * R_h(i)

* ``softmax(logits)``: the ONNX model's probabilities (over the finite scores: in ``ann``
  mode the candidates, which hold nearly all of the mass);
* ``N_h``: the session-kNN distribution over the items the history's neighbour sessions
  hold (``models.neighbourhood``, tables shipped in ``MODEL_DIR/knn/``);
* ``S_h``: the sequential rules of the history's last item, as a distribution (same place);
* ``R_h``: the history's own items, the one at position ``p`` of ``L`` weighted
  ``exp((p - L) / repeat_decay)``, normalised to sum 1 (shoppers re-view items).

The weights are chosen by :mod:`models.blend_fit` on validation cases carved from the
training sessions, never on a test file, and recorded in ``meta.json``'s ``blend``
section; a directory without one serves the neural scores alone. Read side: numpy and
scipy only (no torch), like ``models.serving``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.errors import InvalidInputError, ModelDirectoryError
from models.neighbourhood import Entries, Neighbourhood, Transitions, row_normalised

BLEND_META = "blend"
"""``meta.json`` section: ``{"weights": {...}, "knn": {...}, "rules": {...},
"validation": {...}}``."""


@dataclass(frozen=True)
class BlendWeights:
    """How much each term adds to the neural probabilities (module doc)."""

    knn: float = 0.0  # weight of the neighbourhood distribution N_h
    rules: float = 0.0  # weight of the sequential-rules distribution S_h
    repeat: float = 0.0  # weight of the history distribution R_h
    repeat_decay: float = 2.0  # in items: older history items weigh less in R_h

    def __post_init__(self) -> None:
        if min(self.knn, self.rules, self.repeat) < 0 or not self.repeat_decay > 0:
            raise InvalidInputError("BlendWeights: knn, rules, repeat >= 0 and "
                                    "repeat_decay > 0")

    @property
    def is_neural_only(self) -> bool:
        return self.knn == 0 and self.rules == 0 and self.repeat == 0


def history_entries(rows: Sequence[Sequence[int]], width: int, decay: float) -> Entries:
    """``R_h`` of every row in sparse form (``models.neighbourhood.Entries``): each known
    item's most recent position, decayed, each row summing to 1.

    >>> keys, values = history_entries([[3, 1, 3]], width=4, decay=1.0)
    >>> keys.tolist(), [round(v, 3) for v in values.tolist()]
    ([1, 3], [0.269, 0.731])
    """
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    flat = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(lengths.sum()))
    row = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    age = np.repeat(lengths, lengths) - 1 - (np.arange(len(flat)) - np.repeat(
        np.cumsum(lengths) - lengths, lengths))  # 0 for the last item
    known = flat > 0
    keys, age = row[known] * width + flat[known], age[known]
    order = np.lexsort((age, keys))  # per key, the most recent occurrence first
    keys, age = keys[order], age[order]
    unique_keys, first = np.unique(keys, return_index=True)
    values = np.exp(-age[first] / decay)
    return unique_keys, row_normalised(unique_keys, values, width, len(rows))


def softmax_rows(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Row-wise softmax of ``scores`` over its entries, in place (``-inf``/NaN -> 0).

    >>> softmax_rows(np.array([[-np.inf, 0.0, 0.0]], dtype=np.float32)).tolist()
    [[0.0, 0.5, 0.5]]
    """
    top = scores.max(axis=1, keepdims=True)  # NaN when the row holds one
    if np.isnan(top).any():
        scores[np.isnan(scores)] = -np.inf
        top = scores.max(axis=1, keepdims=True)
    scores -= np.where(np.isfinite(top), top, 0)
    np.exp(scores, out=scores)
    scores *= 1.0 / np.maximum(scores.sum(axis=1, keepdims=True), np.finfo(np.float32).tiny)
    return scores


Rescore = Callable[[npt.NDArray[np.int64], npt.NDArray[np.int64]], npt.NDArray[np.float32]]
"""``(rows, items) -> logits``: the neural scores of the given (row, item) pairs."""


class Blend:
    """The neighbourhood and the weights of a model directory's ``blend`` section."""

    def __init__(self, neighbourhood: Neighbourhood | None, weights: BlendWeights,
                 transitions: Transitions | None = None) -> None:
        if weights.knn > 0 and neighbourhood is None:
            raise InvalidInputError("a blend with a knn weight needs a neighbourhood")
        if weights.rules > 0 and transitions is None:
            raise InvalidInputError("a blend with a rules weight needs the rules")
        self.neighbourhood = neighbourhood
        self.transitions = transitions
        self.weights = weights

    def describe(self) -> str:
        w = self.weights
        return (f"blend: knn {w.knn:g}, rules {w.rules:g}, repeat {w.repeat:g} "
                f"(decay {w.repeat_decay:g})")

    def apply(
        self, logits: npt.NDArray[np.float32], rows: Sequence[Sequence[int]],
        rescore: Rescore | None = None,
    ) -> npt.NDArray[np.float32]:
        """Blended scores ``(B, n_items + 1)`` from the model's ``logits`` of the index
        histories ``rows`` (overwritten). Without ``rescore`` (exact ranking) every item is
        scored. With it (``ann`` mode), ``-inf`` logits (items the item index did not
        retrieve) stay ``-inf`` unless a term scores the item: then its logit comes from
        ``rescore``. Column 0 is ``-inf``. OOV entries (0) are dropped from the histories
        first, as the neural model drops them."""
        width = logits.shape[1]
        rows = [[i for i in row if i] for row in rows]
        terms = self._terms(rows, width)
        flat = logits.reshape(-1)  # a view: writes reach logits
        unscored = None
        if rescore is not None:
            unscored = ~np.isfinite(logits)
            if terms:
                keys = np.unique(np.concatenate([k for _, (k, _) in terms]))
                missing = keys[~np.isfinite(flat[keys])]
                if len(missing):
                    flat[missing] = rescore(missing // width, missing % width)
                    unscored.reshape(-1)[missing] = False
        probabilities = softmax_rows(logits)
        flat = probabilities.reshape(-1)
        for weight, (keys, values) in terms:
            flat[keys] += np.float32(weight) * values.astype(np.float32)
        if unscored is not None:
            probabilities[unscored] = -np.inf
        probabilities[:, 0] = -np.inf
        return probabilities


    def apply_sparse(
        self, keys: npt.NDArray[np.int64], logits: npt.NDArray[np.float32],
        rows: Sequence[Sequence[int]], width: int, rescore: Rescore,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """:meth:`apply`'s ``ann`` mode without the dense ``(B, width)`` matrix: ``keys``
        (``row * width + item``, distinct, item >= 1) are the retrieved candidates and
        ``logits`` their neural scores. Returns the sorted distinct keys of the candidates
        plus every item a term scores (its logit from ``rescore``) and their blended scores:
        the same numbers :meth:`apply` gives those entries (every other entry is ``-inf``
        there), at a cost that grows with the candidates, not the catalogue."""
        rows = [[i for i in row if i] for row in rows]
        terms = self._terms(rows, width)
        all_keys = np.unique(np.concatenate([keys, *(k for _, (k, _) in terms)]))
        all_keys = all_keys[all_keys % width != 0]
        scores = np.full(len(all_keys), np.nan, dtype=np.float32)
        scores[np.searchsorted(all_keys, keys)] = logits
        missing = np.isnan(scores)
        if missing.any():
            asked = all_keys[missing]
            scores[missing] = rescore(asked // width, asked % width)
        probabilities = _softmax_segments(scores, all_keys // width)
        for weight, (term_keys, values) in terms:
            real = term_keys % width != 0  # column 0 (OOV) is never scored
            term_keys, values = term_keys[real], values[real]
            probabilities[np.searchsorted(all_keys, term_keys)] += (
                np.float32(weight) * values.astype(np.float32))
        return all_keys, probabilities

    def _terms(self, rows: Sequence[Sequence[int]], width: int) -> list[tuple[float, Entries]]:
        w = self.weights
        terms: list[tuple[float, Entries]] = []
        if w.knn > 0 and self.neighbourhood is not None:
            terms.append((w.knn, self.neighbourhood.entries(rows)))
        if w.rules > 0 and self.transitions is not None:
            terms.append((w.rules, self.transitions.entries(rows)))
        if w.repeat > 0:
            terms.append((w.repeat, history_entries(rows, width, w.repeat_decay)))
        return terms


def _softmax_segments(scores: npt.NDArray[np.float32], segment: npt.NDArray[np.int64]
                      ) -> npt.NDArray[np.float32]:
    """Softmax of ``scores`` within each run of equal ``segment`` (sorted), in place; NaN
    and ``-inf`` count as 0 probability, like :func:`softmax_rows`.

    >>> _softmax_segments(np.array([0.0, 0.0, 5.0], dtype=np.float32),
    ...                   np.array([0, 0, 1])).tolist()
    [0.5, 0.5, 1.0]
    """
    if not len(scores):
        return scores
    scores[np.isnan(scores)] = -np.inf
    starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])
    which = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(scores)]))
    top = np.maximum.reduceat(scores, starts)
    scores -= np.where(np.isfinite(top), top, 0)[which]
    np.exp(scores, out=scores)
    sums = np.add.reduceat(scores, starts)
    scores *= (1.0 / np.maximum(sums, np.finfo(np.float32).tiny))[which]
    return scores


def load_blend(model_dir: Path, meta: dict[str, Any], n_items: int) -> Blend | None:
    """The blend ``meta.json`` describes for ``model_dir``, or None when it has none."""
    section = meta.get(BLEND_META)
    if not section:
        return None
    try:
        weights = BlendWeights(**section["weights"])
    except (KeyError, TypeError, InvalidInputError) as exc:
        raise ModelDirectoryError(f"{model_dir}/meta.json: bad blend section ({exc})") from exc
    neighbourhood = None
    if weights.knn > 0:
        neighbourhood = Neighbourhood.load(model_dir, section.get("knn") or {}, n_items)
    transitions = None
    if weights.rules > 0:
        transitions = Transitions.load(model_dir, section.get("rules") or {}, n_items)
    return Blend(neighbourhood, weights, transitions)
