"""Choose and write a model directory's blend (``models.blend``) on validation cases.

``fit_blend(model_dir, train_sessions, all_sessions, valid)``:

1. fits the neighbourhood and the sequential rules on ``train_sessions`` (the training
   sessions *without* the validation ones: the neural model never saw those either);
2. scores the validation prefixes once with the directory's ONNX model (exact ranking) and
   keeps, per case, the items that can reach the top ``k`` under any weights: the neural top
   :data:`KEEP_NEURAL` plus every item the neighbourhood, the rules or the history score. An
   item
   outside that set scores at most the :data:`KEEP_NEURAL`-th neural probability, so the
   ranks within the top ``k`` (``k`` < :data:`KEEP_NEURAL`) are exact;
3. searches the weights on that table by coordinate ascent over :data:`GRID` (each weight
   in turn set to its best grid value with the others held, :data:`ROUNDS` rounds from the
   neural model alone), by HR@k + MRR@k, the training's selection score;
4. when the best beats the neural model alone, refits the tables it uses on
   ``all_sessions`` (every training session: the served tables should know the most
   recent sessions) and writes ``knn/`` and ``meta.json``'s ``blend`` section; otherwise
   it removes any blend the directory had.

Nothing here reads a test file; the validation figures it records are those of the
neighbourhood fitted without the validation sessions.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.blend import BLEND_META, BlendWeights, history_entries, softmax_rows
from models.errors import InvalidInputError
from models.model_dir import META_FILE, read_model_dir
from models.neighbourhood import KNN_DIR, Neighbourhood, Transitions

logger = logging.getLogger(__name__)

KEEP_NEURAL = 100
"""Neural top items kept per validation case in the tuning table (module doc)."""

GRID: dict[str, tuple[float, ...]] = {
    "knn": (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0),
    "rules": (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
    "repeat": (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
    "repeat_decay": (1.0, 2.0, 4.0, 8.0),
}
"""The values each weight may take (``BlendWeights`` fields)."""

ROUNDS = 3
"""Coordinate-ascent rounds over :data:`GRID` (module doc, step 3)."""

CHUNK = 256
"""Validation cases scored per ONNX call."""

MAX_CASES = 20_000
"""Validation cases the tuning samples at most (seeded), as the training's early stopping
does: the table holds a few hundred entries per case."""


@dataclass(frozen=True)
class TuningTable:
    """Per validation case, the items that can reach the top ``k`` (module doc, step 2),
    flattened: entry ``e`` is item ``item[e]`` of case ``row[e]``."""

    row: npt.NDArray[np.int64]  # (E,)
    item: npt.NDArray[np.int64]  # (E,)
    neural: npt.NDArray[np.float32]  # (E,) probability
    knn: npt.NDArray[np.float32]  # (E,) N_h(item)
    rules: npt.NDArray[np.float32]  # (E,) S_h(item)
    age: npt.NDArray[np.float32]  # (E,) items since the item was last seen; inf: never
    target: npt.NDArray[np.bool_]  # (E,) the entry is its case's target
    n_cases: int


def build_table(
    logits_batches: Sequence[npt.NDArray[np.float32]], prefixes: Sequence[Sequence[int]],
    targets: npt.NDArray[np.int64], neighbourhood: Neighbourhood, transitions: Transitions,
    keep: int = KEEP_NEURAL,
) -> TuningTable:
    """The tuning table from the model's logits of ``prefixes`` (in order, in batches)."""
    width = neighbourhood.n_items + 1
    parts: list[tuple[npt.NDArray[Any], ...]] = []
    start = 0
    for logits in logits_batches:
        n = len(logits)
        rows = prefixes[start : start + n]
        tg = np.asarray(targets[start : start + n], dtype=np.int64)
        probabilities = softmax_rows(np.array(logits, dtype=np.float32))  # (b, n + 1)
        probabilities[:, 0] = 0.0
        m = min(keep, width - 1)
        top = np.argpartition(-probabilities, m - 1, axis=1)[:, :m]  # (b, m)
        knn_keys, knn_values = neighbourhood.entries(rows)
        rule_keys, rule_values = transitions.entries(rows)
        hist_keys, _ = history_entries(rows, width, 1.0)
        local = np.arange(n, dtype=np.int64)
        keys = np.unique(np.concatenate([
            (local[:, None] * width + top).ravel(), knn_keys, rule_keys, hist_keys,
            local * width + tg,
        ]))
        keys = keys[keys % width != 0]
        flat = probabilities.reshape(-1)
        knn = np.zeros(len(keys), dtype=np.float32)
        at = np.searchsorted(keys, knn_keys)
        knn[at] = knn_values
        rules = np.zeros(len(keys), dtype=np.float32)
        rules[np.searchsorted(keys, rule_keys)] = rule_values
        age = np.full(len(keys), np.inf, dtype=np.float32)
        last = _last_seen(rows, width)
        at = np.searchsorted(keys, last[0])
        age[at] = last[1]
        row = keys // width
        item = keys % width
        parts.append((row + start, item, flat[keys], knn, rules, age, item == tg[row]))
        start += n
    if start != len(prefixes) or len(targets) != len(prefixes):
        raise InvalidInputError(f"logits cover {start} cases, there are {len(prefixes)}")
    row, item, neural, knn, rules, age, target = (np.concatenate(c)
                                                  for c in zip(*parts, strict=True))
    return TuningTable(row, item, neural, knn, rules, age, target, n_cases=len(prefixes))


def _last_seen(
    rows: Sequence[Sequence[int]], width: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Sorted keys of each row's known items and how many items ago each was last seen."""
    keys_list: list[int] = []
    ages: list[float] = []
    for r, history in enumerate(rows):
        seen: dict[int, int] = {}
        for position, item in enumerate(history):
            if item:
                seen[item] = len(history) - 1 - position
        keys_list.extend(r * width + i for i in seen)
        ages.extend(seen.values())
    keys = np.asarray(keys_list, dtype=np.int64)
    order = np.argsort(keys)
    return keys[order], np.asarray(ages, dtype=np.float32)[order]


def evaluate_table(table: TuningTable, weights: BlendWeights, k: int = 20) -> dict[str, float]:
    """HR@k and MRR@k of ``weights`` on the table (pessimistic ties, as
    ``models.evaluation``)."""
    recent = np.exp(-table.age / np.float32(weights.repeat_decay))  # 0 for unseen items
    sums = np.bincount(table.row, weights=recent, minlength=table.n_cases)
    repeat = recent / np.maximum(sums[table.row], np.finfo(np.float32).tiny)
    score = table.neural + np.float32(weights.knn) * table.knn
    score += np.float32(weights.rules) * table.rules
    score += np.float32(weights.repeat) * repeat.astype(np.float32)
    target_score = np.full(table.n_cases, np.inf, dtype=np.float32)
    target_score[table.row[table.target]] = score[table.target]
    above = (score >= target_score[table.row]) & ~table.target
    rank = 1 + np.bincount(table.row[above], minlength=table.n_cases)
    hit = np.isfinite(target_score) & (rank <= k)
    return {f"hr@{k}": float(hit.mean()),
            f"mrr@{k}": float(np.where(hit, 1.0 / rank, 0.0).mean())}


def search(table: TuningTable, k: int = 20) -> tuple[BlendWeights, dict[str, float],
                                                      dict[str, float]]:
    """``(best weights, their metrics, the neural model's alone)`` by coordinate ascent over
    :data:`GRID` (module doc) on HR@k + MRR@k; a change must improve the score strictly."""
    def score(metrics: dict[str, float]) -> float:
        return metrics[f"hr@{k}"] + metrics[f"mrr@{k}"]

    neural = evaluate_table(table, BlendWeights(), k)
    best, best_metrics = BlendWeights(), neural
    for _ in range(ROUNDS):
        moved = False
        for name, values in GRID.items():
            for value in values:
                weights = replace(best, **{name: value})
                if weights == best:
                    continue
                metrics = evaluate_table(table, weights, k)
                if score(metrics) > score(best_metrics):
                    best, best_metrics, moved = weights, metrics, True
        if not moved:
            break
    return best, best_metrics, neural


def fit_blend(
    model_dir: Path, train_sessions: Sequence[Sequence[int]],
    all_sessions: Sequence[Sequence[int]],
    valid: tuple[Sequence[Sequence[int]], npt.NDArray[np.int64]],
    k: int = 20, max_cases: int = MAX_CASES, seed: int = 0,
) -> dict[str, Any]:
    """Choose the blend on ``valid`` and write it into ``model_dir`` (module doc); returns
    the record written to ``meta.json`` (``weights`` empty when the neural model alone won).
    """
    from models.serving import EXACT, load_scorer

    started = time.monotonic()
    directory = read_model_dir(Path(model_dir))
    n_items = directory.n_items
    scorer = load_scorer(directory.path, device="cpu", retrieval=EXACT)
    hood = Neighbourhood.fit(train_sessions, n_items)
    transitions = Transitions.fit(train_sessions, n_items)
    prefixes, targets = valid[0], np.asarray(valid[1])
    if len(prefixes) > max_cases:
        keep = np.sort(np.random.default_rng(seed).choice(len(prefixes), max_cases, False))
        prefixes, targets = [prefixes[i] for i in keep], targets[keep]
    logits = [scorer.score_indices(prefixes[s : s + CHUNK])
              for s in range(0, len(prefixes), CHUNK)]
    table = build_table(logits, prefixes, targets, hood, transitions)
    del logits
    weights, metrics, neural = search(table, k)
    record: dict[str, Any] = {
        "validation": {"cases": len(prefixes), "neural": neural, "blend": metrics},
        "tuning_seconds": round(time.monotonic() - started, 1),
    }
    meta = dict(directory.meta)
    shutil.rmtree(directory.path / KNN_DIR, ignore_errors=True)
    score = metrics[f"hr@{k}"] + metrics[f"mrr@{k}"]
    if weights.is_neural_only or score <= neural[f"hr@{k}"] + neural[f"mrr@{k}"]:
        meta.pop(BLEND_META, None)
        logger.info("blend: the neural model alone is best on validation (%s)", neural)
        record["weights"] = {}
    else:
        record["weights"] = asdict(weights)
        if weights.knn > 0:
            record["knn"] = Neighbourhood.fit(all_sessions, n_items).save(directory.path)
        if weights.rules > 0:
            record["rules"] = Transitions.fit(all_sessions, n_items).save(directory.path)
        meta[BLEND_META] = record
        logger.info("blend %s on validation: %s (neural alone %s)", weights, metrics, neural)
    (directory.path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n",
                                            encoding="utf-8")
    return record
