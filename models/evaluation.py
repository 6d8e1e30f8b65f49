"""Offline next-item evaluation with full ranking over the whole catalogue.

For every test case (prefix, target) the recommender scores **all** items ``1..n_items``;
the target's rank is computed exactly from those scores and turned into

* ``hr@k`` (hit rate, = the literature's P@k / Recall@k): target ranked ``<= k``;
* ``mrr@k``: ``1 / rank`` when ``rank <= k``, else 0;
* ``ndcg@k``: ``1 / log2(rank + 1)`` when ``rank <= k``, else 0 (one relevant item);
* ``coverage@K`` (K = the largest k): fraction of the catalogue appearing in at least one
  top-K list.

All are fractions in ``[0, 1]`` averaged over cases.

**Ties are pessimistic**: ``rank = 1 + #{items j != target with score_j >= score_target}``,
i.e. the target is placed after every item that scores the same. This never flatters a
model whose scores are sparse (a neighbourhood model that gives the target and 40,000 other
items a score of 0 does *not* get a hit); the "strictly greater" convention would count such
a target as ranked first among the zeros. A target scored NaN or ``-inf`` (an item the model
cannot know, e.g. out of its vocabulary) is a miss, never "ranked last": on a catalogue of at
most k items last would still be a hit. Column 0 (padding/OOV) never counts.

**Approximate retrieval** (a model directory with :class:`Retrieval` ``ann``, ``streamrec
evaluate --retrieval ann``): the recommender scores what the served index path ranks, the
``candidates`` items its index retrieves for the prefix with their exact scores, and every
other item ``-inf``. So a target the index did not retrieve is a miss, and a retrieved
target's rank is counted among the candidates only (an unretrieved item that would have
outscored it is not in the served list either): the metrics are those of the lists the
stream would serve, and ``exact`` minus ``ann`` is the accuracy the index costs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from models.data import STANDARD, Benchmark, load_benchmark
from models.errors import InvalidBenchmarkError, InvalidInputError, UnknownModelError
from models.model_dir import MODEL_FILE, has_model_file, read_model_dir
from models.protocol import Session, SessionRecommender, top_k
from models.vocabulary import Vocabulary

log = logging.getLogger(__name__)

DEFAULT_K_VALUES = (10, 20)
MISS = np.iinfo(np.int64).max
"""Rank given to a target whose score is NaN or ``-inf`` (never a hit)."""


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of one evaluation run: ``result["hr@20"]``, ``result.cases``."""

    metrics: Mapping[str, float]
    cases: int
    wall_s: float = 0.0

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]

    def to_json_dict(self) -> dict[str, float | int]:
        """``{"hr@10", "hr@20", "mrr@10", "mrr@20", "ndcg@10", "ndcg@20", "coverage@20",
        "cases"}`` for the default ``k_values``."""
        return {**self.metrics, "cases": self.cases}


# --------------------------------------------------------------------------- pure metrics
def ranks_from_scores(
    scores: npt.NDArray[np.floating], targets: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """1-based pessimistic rank of each target among columns ``1..n`` of its score row;
    :data:`MISS` for a target scored NaN or ``-inf``.

    >>> s = np.array([[9, 0.5, 0.2, 0.5], [0, 0.1, 0.3, 0.2]], dtype=np.float32)
    >>> ranks_from_scores(s, np.array([1, 2])).tolist()  # row 0: tie with item 3
    [2, 1]
    >>> s[1, 2] = -np.inf  # the model cannot know item 2: a miss, not rank 3 of 3
    >>> ranks_from_scores(s, np.array([1, 2])).tolist() == [2, MISS]
    True
    """
    rows = np.arange(len(targets))
    target_scores = scores[rows, targets]  # (B,)
    ranks = np.count_nonzero(scores[:, 1:] >= target_scores[:, None], axis=1).astype(np.int64)
    ranks[np.isnan(target_scores) | (target_scores == -np.inf)] = MISS
    return ranks


def metrics_from_ranks(
    ranks: npt.NDArray[np.int64], k_values: Sequence[int] = DEFAULT_K_VALUES
) -> dict[str, float]:
    """``hr@k``, ``mrr@k`` and ``ndcg@k`` for each k, averaged over the ranks.

    >>> m = metrics_from_ranks(np.array([1, 3, MISS]), k_values=(2,))
    >>> round(m["hr@2"], 4), round(m["mrr@2"], 4), round(m["ndcg@2"], 4)
    (0.3333, 0.3333, 0.3333)
    """
    if len(ranks) == 0:
        raise InvalidInputError("no evaluation cases")
    ranks_f = ranks.astype(np.float64)
    out: dict[str, float] = {}
    for k in k_values:
        hit = ranks <= k
        out[f"hr@{k}"] = float(hit.mean())
        out[f"mrr@{k}"] = float(np.where(hit, 1.0 / ranks_f, 0.0).mean())
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks_f + 1.0), 0.0).mean())
    return out


# --------------------------------------------------------------------------- evaluation
def _check_inputs(
    prefixes: Sequence[Session], targets: npt.ArrayLike, k_values: Sequence[int], batch: int
) -> tuple[npt.NDArray[np.int64], tuple[int, ...]]:
    targets_arr = np.asarray(targets, dtype=np.int64)
    if targets_arr.ndim != 1 or len(targets_arr) != len(prefixes):
        raise InvalidInputError(
            f"{len(prefixes)} prefixes but targets of shape {targets_arr.shape}"
        )
    if len(targets_arr) == 0:
        raise InvalidInputError("no evaluation cases")
    ks = tuple(sorted(set(int(k) for k in k_values)))
    if not ks or ks[0] < 1 or batch < 1:
        raise InvalidInputError(f"k_values must be positive (got {k_values}), batch_size >= 1")
    return targets_arr, ks


def _finish(
    ranks: list[npt.NDArray[np.int64]],
    covered: npt.NDArray[np.bool_],
    ks: tuple[int, ...],
    started: float,
) -> EvaluationResult:
    all_ranks = np.concatenate(ranks)
    metrics = metrics_from_ranks(all_ranks, ks)
    metrics[f"coverage@{ks[-1]}"] = float(covered[1:].mean())
    ordered = {key: metrics[key] for key in _metric_keys(ks)}
    return EvaluationResult(
        MappingProxyType(ordered), cases=len(all_ranks), wall_s=time.perf_counter() - started
    )


def _metric_keys(ks: Sequence[int]) -> list[str]:
    keys = [f"{m}@{k}" for m in ("hr", "mrr", "ndcg") for k in ks]
    return [*keys, f"coverage@{max(ks)}"]


def evaluate(
    recommender: SessionRecommender,
    prefixes: Sequence[Session],
    targets: npt.ArrayLike,
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    batch_size: int = 256,
) -> EvaluationResult:
    """Full-ranking evaluation of a fitted recommender (see the module docstring).

    ``batch_size`` rows are scored at a time; memory is about
    ``batch_size * (n_items + 1) * 14`` bytes.
    """
    targets_arr, ks = _check_inputs(prefixes, targets, k_values, batch_size)
    started = time.perf_counter()
    ranks: list[npt.NDArray[np.int64]] = []
    covered = np.zeros(0, dtype=bool)  # sized by the first batch's score width
    for start in range(0, len(prefixes), batch_size):
        batch = prefixes[start : start + batch_size]
        batch_targets = targets_arr[start : start + batch_size]
        scores = recommender.score(batch)
        if start == 0 and scores.ndim == 2:
            covered = np.zeros(scores.shape[1], dtype=bool)
        if scores.shape != (len(batch), len(covered)):
            raise InvalidInputError(
                f"{recommender.name}.score returned shape {scores.shape} for {len(batch)} "
                f"rows (expected ({len(batch)}, {len(covered)}))"
            )
        if batch_targets.min() < 1 or batch_targets.max() >= len(covered):
            raise InvalidInputError(
                f"targets must be item indices 1..{len(covered) - 1} of {recommender.name}"
            )
        ranks.append(ranks_from_scores(scores, batch_targets))
        covered[top_k(scores, ks[-1]).ravel()] = True
        log.debug("evaluated %d/%d cases", start + len(batch), len(prefixes))
    return _finish(ranks, covered, ks, started)


def render_table(results: Mapping[str, EvaluationResult]) -> str:
    """A fixed-width table, one row per named result, metrics as fractions.

    >>> r = EvaluationResult({"hr@20": 0.5, "mrr@20": 0.25}, cases=4)
    >>> print(render_table({"pop": r}))
    model  hr@20 mrr@20  cases
    pop   0.5000 0.2500      4
    """
    keys: list[str] = []
    for result in results.values():
        keys.extend(k for k in result.metrics if k not in keys)
    name_w = max([5, *(len(n) for n in results)])
    widths = [max(6, len(k)) for k in keys]
    columns = list(zip(keys, widths, strict=True))
    header = "model".ljust(name_w) + "".join(f" {k:>{w}}" for k, w in columns)
    lines = [header + "  cases"]
    for name, result in results.items():
        cells = "".join(
            f" {result.metrics[k]:>{w}.4f}" if k in result.metrics else " " * (w + 1)
            for k, w in columns
        )
        lines.append(f"{name.ljust(name_w)}{cells} {result.cases:>6}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- model specs
def evaluate_benchmark(
    benchmark_dir: Path,
    model_spec: str,
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    batch_size: int = 256,
    device: str = "auto",
) -> EvaluationResult:
    """Load a benchmark directory and evaluate ``model_spec`` on its test cases (see
    :func:`evaluate_model_on`)."""
    return evaluate_model_on(
        load_benchmark(Path(benchmark_dir)), model_spec, k_values, batch_size, device
    )


def model_names() -> list[str]:
    """Every model name ``evaluate_model_on`` accepts besides a model directory."""
    from models.baselines import BASELINES, TEXT_BASELINES

    return [*BASELINES, *TEXT_BASELINES]


@dataclass(frozen=True)
class Retrieval:
    """How a model directory ranks in evaluation (``models.serving.OnnxRecommender``):
    ``exact`` (every item scored) or ``ann`` (the served index path: items it does not
    retrieve are misses); ``candidates``/``ef_search`` None: the serving defaults."""

    mode: str = "exact"
    candidates: int | None = None
    ef_search: int | None = None


def build_recommender(
    benchmark: Benchmark,
    model_spec: str,
    device: str = "auto",
    overrides: Sequence[str] = (),
    item_vectors: npt.NDArray[np.float32] | None = None,
    retrieval: Retrieval = Retrieval(),
) -> SessionRecommender:
    """The unfitted recommender ``model_spec`` names, for ``benchmark``.

    A key of ``models.baselines.BASELINES`` (``overrides``: ``KEY=VALUE`` fields of its
    config); a key of ``TEXT_BASELINES``, given ``item_vectors`` or, when None, the cached
    vectors of ``benchmark.item_texts`` (``models.text.item_vectors``); or a trained model
    directory, served through ``models.serving.OnnxRecommender`` (ranking as ``retrieval``
    says) and re-indexed by external id when its vocabulary differs from the data's. Under
    a protocol other than the standard one, a model directory must have been trained on
    exactly this benchmark's training data (its ``training_data_fingerprint``), or it may
    have seen hidden items.
    """
    from models.baselines import BASELINE_CONFIGS, BASELINES, TEXT_BASELINES
    from models.cli_common import parse_overrides

    if retrieval != Retrieval() and not has_model_file(Path(model_spec)):
        raise InvalidInputError("retrieval options apply to model directories, not to "
                                f"{model_spec!r}")
    config = None
    if model_spec in BASELINE_CONFIGS and overrides:
        config = BASELINE_CONFIGS[model_spec](
            **parse_overrides(list(overrides), BASELINE_CONFIGS[model_spec])
        )
    if model_spec in BASELINES:
        factory: Any = BASELINES[model_spec]
        return factory(config) if config is not None else factory()
    if model_spec in TEXT_BASELINES:
        if item_vectors is None:
            item_vectors = benchmark_item_vectors(benchmark)
        return TEXT_BASELINES[model_spec](item_vectors, config)
    if not has_model_file(Path(model_spec)):
        raise UnknownModelError(
            f"model {model_spec!r} is neither a baseline ({', '.join(model_names())}) nor a "
            f"model directory containing {MODEL_FILE}"
        )
    if overrides:
        raise InvalidInputError("--set applies to baselines; a model directory is fixed")
    if benchmark.protocol != STANDARD:
        trained_on = read_model_dir(Path(model_spec)).meta["training_data_fingerprint"]
        if trained_on != benchmark.fingerprint:
            raise InvalidInputError(
                f"{model_spec} was not trained on this {benchmark.protocol} training data "
                "(training_data_fingerprint differs), so it may have seen the hidden items: "
                "train it with the same streamrec train --protocol and --cold-seed"
            )
    return _load_model_dir(Path(model_spec), benchmark.vocabulary, device, retrieval)


def benchmark_item_vectors(benchmark: Benchmark) -> npt.NDArray[np.float32]:
    """The ``(n_items + 1, 512)`` text vectors of ``benchmark``'s items (cached on disk)."""
    from models.text.item_vectors import item_vectors

    if benchmark.item_texts is None:
        raise InvalidBenchmarkError(
            "this data has no item text (Diginetica and event files have none): text models "
            "need a dataset with item texts, such as amazon_scientific/"
        )
    return item_vectors(benchmark.item_texts)


def evaluate_model_on(
    benchmark: Benchmark,
    model_spec: str,
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    batch_size: int = 256,
    device: str = "auto",
    overrides: Sequence[str] = (),
    item_vectors: npt.NDArray[np.float32] | None = None,
    retrieval: Retrieval = Retrieval(),
) -> EvaluationResult:
    """Evaluate ``model_spec`` (see :func:`build_recommender`) on ``benchmark``'s test cases
    after fitting it on its training sessions (a model directory's ``fit`` trains nothing)."""
    recommender = build_recommender(benchmark, model_spec, device, overrides, item_vectors,
                                    retrieval)
    started = time.perf_counter()
    recommender.fit(benchmark.train_sessions, benchmark.n_items)
    log.info("fitted %s in %.1fs", model_spec, time.perf_counter() - started)
    return evaluate(
        recommender, benchmark.test_prefixes, benchmark.test_targets, k_values, batch_size
    )


def _load_model_dir(
    model_dir: Path, vocabulary: Vocabulary, device: str, retrieval: Retrieval = Retrieval()
) -> SessionRecommender:
    """The ONNX artifact the stream serves, as a recommender over ``vocabulary``'s indices."""
    from models.serving import OnnxRecommender  # imports onnxruntime: only when needed

    if retrieval == Retrieval():
        recommender = OnnxRecommender(model_dir, device=device)
    else:
        options = {key: value for key, value in (("candidates", retrieval.candidates),
                                                 ("ef_search", retrieval.ef_search))
                   if value is not None}
        recommender = OnnxRecommender(model_dir, device=device, retrieval=retrieval.mode,
                                      **options)
    model_vocabulary: Vocabulary = recommender.scorer.vocabulary
    if model_vocabulary.items == vocabulary.items:
        return recommender
    log.info("%s: mapping the data's item ids onto the model's vocabulary", model_dir)
    return ReindexedRecommender(recommender, model_vocabulary, vocabulary)


class ReindexedRecommender(SessionRecommender):
    """Wraps a recommender whose item indices come from another vocabulary.

    Sessions and prefixes in ``outer`` indices are mapped to the model's (``inner``)
    indices by external id; outer items the model does not know become OOV (0) in its
    input and score ``-inf`` in its output (never recommended; a target the model cannot
    know is a miss). ``fit`` fits the inner recommender on the mapped sessions, in its own
    catalogue (for a pre-trained ``OnnxRecommender`` that only binds it to the data, so no
    sessions at all is fine).

    >>> from models.baselines import Popularity
    >>> rec = ReindexedRecommender(Popularity(), Vocabulary(("b", "a")), Vocabulary(("a", "b")))
    >>> rec.fit([[1, 2, 2]], n_items=2)  # outer "a" (1) once, "b" (2) twice
    >>> rec.score([[1]])[0].tolist(), rec.rank([[1]], k=2).tolist()
    ([-inf, 1.0, 2.0], [[2, 1]])
    """

    def __init__(self, inner: SessionRecommender, inner_vocab: Vocabulary, outer: Vocabulary):
        self.inner = inner
        self.name = inner.name
        self.n_items = len(outer)
        self._n_inner = len(inner_vocab)
        # (n_outer + 1,) inner index of every outer index, 0 = unknown to the model
        self._to_inner = np.asarray([0, *inner_vocab.encode(outer.items)], dtype=np.int64)

    def _to_inner_rows(self, rows: Sequence[Session], what: str) -> list[list[int]]:
        """``rows`` in inner indices; raises on an outer index outside ``0..n_items``."""
        if not rows:
            return []
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
        if len(flat) and not 0 <= flat.min() <= flat.max() <= self.n_items:
            raise InvalidInputError(f"{what} item index outside 0..{self.n_items}")
        mapped = self._to_inner[flat].tolist()
        ends = np.cumsum(lengths).tolist()
        return [mapped[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]

    def fit(self, sessions: Sequence[Session], n_items: int) -> None:
        if n_items != self.n_items:
            raise InvalidInputError(
                f"{self.name}: the outer vocabulary has {self.n_items} items, data has {n_items}"
            )
        self.inner.fit(self._to_inner_rows(sessions, "session"), self._n_inner)

    def score(self, prefixes: Sequence[Session]) -> npt.NDArray[np.float32]:
        to_inner = self._to_inner
        inner = self.inner.score(self._to_inner_rows(prefixes, "prefix"))
        out = inner[:, to_inner]  # (B, n_outer + 1)
        out[:, to_inner == 0] = -np.inf
        return out
