"""Serve a model directory with ONNX Runtime: what the stream calls (see docs/contracts.md).

Usage, for a ``MODEL_DIR`` written by ``streamrec train``::

    scorer = load_scorer("MODEL_DIR", device="auto", intra_op_threads=1)
    scorer.recommend([["17", "4"]], k=3, exclude=[{"4"}])
    # -> [[('23', 11.2), ('17', 10.9), ('8', 9.7)]]

Two ways to rank (``retrieval``): ``exact`` runs the scores graph (``model.onnx``) and ranks
the whole catalogue; ``ann`` runs the encoder graph, asks an approximate nearest-neighbour
index over the item vectors (``models.retrieval``, built when the model is loaded) for
``candidates`` items, re-scores those exactly and ranks them; a row left with fewer than
``k`` candidates after its exclusions is ranked exactly instead. ``auto`` (the default) is
``ann`` when the directory holds the retrieval pair and the catalogue has at least
``models.retrieval.AUTO_MIN_ITEMS`` items, else ``exact``; directories exported before the
pair existed always serve exactly. With a blend (``models.blend``) the ``ann`` candidates
are the retrieved items plus those its terms score, blended sparsely (on Diginetica: the
same accuracy as exact, a third less CPU per user; docs/performance.md).

History handling: histories are external item ids, oldest first; ids the vocabulary does
not know map to the OOV index 0 and are then dropped (the model never saw index 0 inside a
history), the rest is truncated to the model's ``max_seq_len`` most recent items. A history
with no known item is scored as the single OOV item (the model's context-free guess).
Index 0 and excluded items are never recommended. Items are ordered by
``models.protocol.top_k`` (higher score first, equal scores by lower item index), exactly
as :class:`OnnxRecommender` and the offline evaluation rank them.

Read side: numpy, onnxruntime and the standard library only (no torch, no onnx), so a
worker that serves a model never loads PyTorch.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from models.blend import Blend, load_blend
from models.errors import (
    InvalidInputError,
    ModelDirectoryError,
    NotFittedError,
    ProviderUnavailableError,
)
from models.model_dir import ModelDirectory, read_model_dir
from models.onnx_contract import ITEM_IDS, LENGTHS, SCORES, SESSION, pad_batch
from models.protocol import Session, SessionRecommender, check_item_range, top_k
from models.retrieval import (
    AUTO_MIN_ITEMS,
    DEFAULT_CANDIDATES,
    AnnSettings,
    Retriever,
    faiss_gpu_available,
)

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
EXACT = "exact"
ANN = "ann"
AUTO = "auto"
RETRIEVAL_MODES = (AUTO, EXACT, ANN)
_CUDA_LIBRARIES = ("libcuda.so.1", "libcudart.so.12", "libcublasLt.so.12", "libcudnn.so.9")


@functools.cache
def cuda_usable() -> bool:
    """True when ORT has its CUDA provider *and* the driver and CUDA libraries load.

    Checked without asking ORT for the provider, so a CPU machine logs nothing.
    """
    if CUDA not in ort.get_available_providers():
        return False
    for library in _CUDA_LIBRARIES:
        try:
            ctypes.CDLL(library)
        except OSError:
            logger.debug("CUDA unusable: cannot load %s", library)
            return False
    return True


def select_providers(device: str = "auto") -> list[str]:
    """ORT providers for ``device``: ``auto`` -> CUDA then CPU when CUDA is usable, else
    CPU only; ``cpu`` -> CPU; ``cuda`` -> CUDA then CPU, or :class:`ProviderUnavailableError`.

    >>> select_providers("cpu")
    ['CPUExecutionProvider']
    """
    if device == "cpu":
        return [CPU]
    if device == "auto":
        return [CUDA, CPU] if cuda_usable() else [CPU]
    if device == "cuda":
        if not cuda_usable():
            raise ProviderUnavailableError(
                "device 'cuda' requested but ONNX Runtime cannot use CUDA here "
                f"(providers {ort.get_available_providers()}, or CUDA libraries missing); "
                "use device 'auto' or 'cpu'"
            )
        return [CUDA, CPU]
    raise InvalidInputError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")


def open_session(path: Path, device: str = "auto", intra_op_threads: int = 1) -> Any:
    """An ORT ``InferenceSession`` on ``path``: sequential execution, ``intra_op_threads``
    threads, every graph optimisation, warnings and errors only."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=select_providers(device))


BUCKET_GROWTH = 2
"""Rows of one encoder call have lengths within this factor of the shortest (see
:func:`length_buckets`)."""

BUCKET_MIN_ROWS = 32
"""A length bucket holds at least this many rows (fewer, larger calls for small batches)."""


def length_buckets(
    rows: Sequence[Sequence[int]], max_len: int | None = None
) -> list[npt.NDArray[np.int64]]:
    """Positions of ``rows`` grouped by similar length (after ``pad_batch``'s OOV drop and
    truncation), shortest first: each group starts a new one when a row is more than
    :data:`BUCKET_GROWTH` times as long as the group's first and the group has at least
    :data:`BUCKET_MIN_ROWS` rows.

    A batch is padded to its longest row, and the session encoder's cost grows with the
    padded width (each position attends over its item's global neighbours): measured on the
    Diginetica ``sessattn`` at batch 256 with session-like lengths (mean 4, longest about 23
    per batch), one padded call cost 0.116 CPU ms per user, four length buckets 0.036,
    with bit-identical outputs (padding is masked).

    >>> [b.tolist() for b in length_buckets([[1] * 9, [1], [1, 2]])]
    [[1, 2, 0]]
    >>> sizes = [len(b) for b in length_buckets([[1]] * 40 + [[1, 2, 3]] * 40)]
    >>> sizes
    [40, 40]
    """
    cap = max_len or 2**62
    lengths = np.fromiter((min(cap, max(1, sum(1 for i in r if i))) for r in rows),
                          dtype=np.int64, count=len(rows))
    if len(rows) <= BUCKET_MIN_ROWS:
        return [np.argsort(lengths, kind="stable")] if len(rows) else []
    order = np.argsort(lengths, kind="stable")
    buckets: list[npt.NDArray[np.int64]] = []
    start = 0
    for end in range(1, len(order) + 1):
        if end == len(order) or (
            lengths[order[end]] > BUCKET_GROWTH * lengths[order[start]]
            and end - start >= BUCKET_MIN_ROWS
        ):
            buckets.append(order[start:end])
            start = end
    return buckets


def resolve_retrieval(mode: str, model_dir: ModelDirectory) -> str:
    """``exact`` or ``ann`` for the requested ``mode`` (see the module doc); ``ann`` on a
    directory without the retrieval pair is a :class:`ModelDirectoryError`.

    >>> from models.vocabulary import Vocabulary
    >>> old = ModelDirectory(Path("/old"), {"n_items": 50_000, "onnx": {}}, {}, Vocabulary(()), {})
    >>> resolve_retrieval("auto", old), resolve_retrieval("exact", old)
    ('exact', 'exact')
    """
    if mode not in RETRIEVAL_MODES:
        raise InvalidInputError(f"retrieval must be one of {RETRIEVAL_MODES}, got {mode!r}")
    if mode == EXACT:
        return EXACT
    if mode == ANN:
        if not model_dir.has_encoder:
            raise ModelDirectoryError(
                f"retrieval 'ann' needs the retrieval pair (encoder.onnx, item_vectors.npy "
                f"with a passed parity record) and {model_dir.path} has none: re-export it "
                "with 'streamrec train' (or models.model_dir_writer.add_encoder from its "
                "checkpoint), or serve it with retrieval 'exact'"
            )
        return ANN
    return ANN if model_dir.has_encoder and model_dir.n_items >= AUTO_MIN_ITEMS else EXACT


class OnnxScorer:
    """Scores histories of external item ids with a model directory's ONNX graphs, ranking
    exactly or through the item index (``retrieval``, see the module doc)."""

    def __init__(
        self, model_dir: ModelDirectory, device: str = "auto", intra_op_threads: int = 1,
        retrieval: str = AUTO, candidates: int = DEFAULT_CANDIDATES,
        ef_search: int | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.name = model_dir.name
        self.version = model_dir.version
        self.vocabulary = model_dir.vocabulary
        self.n_items = model_dir.n_items
        self.max_seq_len = model_dir.max_seq_len
        self.retrieval = resolve_retrieval(retrieval, model_dir)
        self._session = open_session(model_dir.onnx_path, device, intra_op_threads)
        self.provider: str = self._session.get_providers()[0]
        self._bucketed = self.provider != CUDA  # a GPU pays per call, not per padded row
        self._encoder: Any = None
        self._retriever: Retriever | None = None
        if self.retrieval == ANN:
            self._encoder = open_session(model_dir.encoder_path, device, intra_op_threads)
            vectors, bias = model_dir.item_vectors()
            settings = AnnSettings(candidates=candidates, ef_search=ef_search)
            use_gpu = self.provider == CUDA and faiss_gpu_available()
            self._retriever = Retriever(vectors, bias, settings, use_gpu=use_gpu)
        self.blend: Blend | None = load_blend(model_dir.path, model_dir.meta, self.n_items)
        self.loaded_at = datetime.now(UTC)
        logger.info(
            "loaded %s %s from %s on %s, %s", self.name, self.version, model_dir.path,
            self.provider, self.describe_retrieval(),
        )

    def describe_retrieval(self) -> str:
        """How this scorer ranks, in words (for logs and reports)."""
        blend = "" if self.blend is None else f"; {self.blend.describe()}"
        if self._retriever is None:
            return f"exact ranking of all {self.n_items} items{blend}"
        index, settings = self._retriever.index, self._retriever.settings
        where = "GPU flat" if index.device == "cuda" else f"HNSW efSearch {settings.breadth}"
        return (f"ann: {settings.candidates} candidates ({where}, built in "
                f"{index.build_seconds:.2f} s) re-scored exactly{blend}")

    @property
    def retriever(self) -> Retriever | None:
        """The item index and its re-scoring (``retrieval == "ann"``), else None."""
        return self._retriever

    def _buckets(self, rows: Sequence[Sequence[int]]) -> list[npt.NDArray[np.int64]]:
        """:func:`length_buckets` on CPU; one group (one call) on CUDA, where a padded
        position costs parallel work and every extra call its launch and copies."""
        if self._bucketed:
            return length_buckets(rows, self.max_seq_len)
        return [np.arange(len(rows), dtype=np.int64)] if len(rows) else []

    # ------------------------------------------------------------------ index space
    def score_indices(self, rows: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
        """Scores ``(B, n_items + 1)`` of index histories from the scores graph (0 entries
        are dropped), column 0 set to ``-inf``: the exact reference in either mode."""
        if not len(rows):
            return np.zeros((0, self.n_items + 1), dtype=np.float32)
        ids, lengths = pad_batch(rows, self.max_seq_len)  # (B, L), (B,)
        scores: npt.NDArray[np.float32] = self._session.run(
            [SCORES], {ITEM_IDS: ids, LENGTHS: lengths}
        )[0]  # (B, n_items + 1)
        scores[:, 0] = -np.inf
        return scores

    def encode_indices(self, rows: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
        """Session vectors ``(B, d)`` of index histories from the encoder graph (``ann``
        mode only), run once per length group (:meth:`_buckets`)."""
        if self._encoder is None or self._retriever is None:
            raise InvalidInputError(f"{self.name}: encode_indices needs retrieval 'ann'")
        session = np.empty((len(rows), self._retriever.index.dim), dtype=np.float32)  # (B, d)
        for bucket in self._buckets(rows):  # similar lengths: less padding
            ids, lengths = pad_batch([rows[i] for i in bucket], self.max_seq_len)
            session[bucket] = self._encoder.run([SESSION], {ITEM_IDS: ids, LENGTHS: lengths})[0]
        return session

    def candidate_scores(self, rows: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
        """Scores ``(B, n_items + 1)`` as the ranking sees them: in ``exact`` mode those of
        :meth:`score_indices`; in ``ann`` mode the retrieved candidates' exact scores and
        ``-inf`` for every item the index did not retrieve (and column 0). With a blend
        (``models.blend``) these are the blended scores; in ``ann`` mode the candidates are
        then the retrieved items plus those the blend's terms score, all re-scored exactly.
        """
        if self._retriever is None:
            scores = self.score_indices(rows)
            return scores if self.blend is None else self.blend.apply(scores, rows)
        out = np.full((len(rows), self.n_items + 1), -np.inf, dtype=np.float32)
        if self.blend is not None:  # the very numbers the stream ranks (_sparse_blend)
            keys, blended = self._sparse_blend(rows)
            out.reshape(-1)[keys] = blended
            return out
        _queries, row_of, items, found_scores = self._retrieve(rows)
        out[row_of, items] = found_scores
        return out

    def _retrieve(self, rows: Sequence[Sequence[int]]) -> tuple[
            npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64],
            npt.NDArray[np.float32]]:
        """``ann`` mode: the session vectors ``(B, d)`` of ``rows`` and, per item the index
        retrieved, its row, its item index and its exact score (row-major order)."""
        if self._retriever is None:
            raise InvalidInputError(f"{self.name}: _retrieve needs retrieval 'ann'")
        queries = self.encode_indices(rows)  # (B, d)
        items, found_scores = self._retriever.candidate_scores(queries)  # (B, C)
        found = items >= 0
        return (queries, np.nonzero(found)[0].astype(np.int64), items[found].astype(np.int64),
                found_scores[found])

    def _sparse_blend(self, rows: Sequence[Sequence[int]]
                      ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """``ann`` mode with a blend: sorted keys ``row * (n_items + 1) + item`` of the
        retrieved candidates plus the items the blend's terms score, and their blended
        scores (``models.blend.Blend.apply_sparse``: no ``(B, n_items + 1)`` matrix)."""
        if self._retriever is None or self.blend is None:
            raise InvalidInputError(f"{self.name}: _sparse_blend needs ann and a blend")
        width = self.n_items + 1
        queries, row_of, items, found_scores = self._retrieve(rows)
        keys = row_of * width + items
        order = np.argsort(keys, kind="stable")
        return self.blend.apply_sparse(
            keys[order], found_scores[order].astype(np.float32), rows, width,
            functools.partial(_rescore, self._retriever, queries))

    def _blended_top(
        self, rows: Sequence[Sequence[int]], k: int, excluded: Sequence[Sequence[int]] | None
    ) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        """Per row, ``(item indices, scores)`` of the blend's top ``k`` (``top_k`` order),
        never an excluded item nor a ``-inf`` score; in ``ann`` mode a row left with fewer
        than ``k`` candidates is ranked over the exact blend instead."""
        if self.blend is None:
            raise InvalidInputError(f"{self.name}: no blend")
        out: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]] = [
            (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)) for _ in rows]
        groups = (self._buckets(rows) if self._retriever is None
                  else [np.arange(len(rows), dtype=np.int64)] if len(rows) else [])
        for group in groups:
            sub = [rows[r] for r in group]
            sub_excluded = None if excluded is None else [excluded[r] for r in group]
            if self._retriever is None:
                ranked = _ranked(self.candidate_scores(sub), k, sub_excluded)
            else:
                keys, blended = self._sparse_blend(sub)
                ranked = _ranked_sparse(keys, blended, self.n_items + 1, len(sub), k,
                                        sub_excluded)
            short = [j for j, (items, _) in enumerate(ranked)
                     if self._retriever is not None and len(items) < min(k, self.n_items)]
            if short and self._retriever is not None:
                self._retriever.fallback_rows += len(short)
                exact = self.blend.apply(self.score_indices([sub[j] for j in short]),
                                         [sub[j] for j in short])
                redo = _ranked(exact, k, None if sub_excluded is None
                               else [sub_excluded[j] for j in short])
                for j, pair in zip(short, redo, strict=True):
                    ranked[j] = pair
            for r, pair in zip(group.tolist(), ranked, strict=True):
                out[r] = pair
        return out

    # ------------------------------------------------------------------ external ids
    def knows(self, item_id: str) -> bool:
        """Whether ``item_id`` is in the model's vocabulary (was seen in training)."""
        return self.vocabulary.index(item_id) != 0

    def recommend(
        self,
        histories: Sequence[Sequence[str]],
        k: int,
        exclude: Sequence[Collection[str]] | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Top-``k`` ``(item_id, score)`` per history, best first (``top_k`` order), never
        an excluded item nor one scoring ``-inf``/NaN."""
        if k <= 0:
            raise InvalidInputError(f"k must be positive, got {k}")
        if exclude is not None and len(exclude) != len(histories):
            raise InvalidInputError(
                f"exclude has {len(exclude)} rows for {len(histories)} histories"
            )
        encode = self.vocabulary.index
        rows = [[encode(item) for item in h] for h in histories]
        excluded = (
            None if exclude is None else [[i for i in map(encode, row) if i] for row in exclude]
        )
        items = self.vocabulary.items
        if self.blend is not None or self._retriever is not None:
            ranked = (self._retriever.top(self.encode_indices(rows), k, excluded)
                      if self.blend is None and self._retriever is not None
                      else self._blended_top(rows, k, excluded))
            return [[(items[i - 1], s) for i, s in zip(row.tolist(), row_scores.tolist(),
                                                         strict=True)]
                    for row, row_scores in ranked]
        out: list[list[tuple[str, float]]] = [[] for _ in rows]
        for bucket in self._buckets(rows):  # similar lengths: less padding
            scores = self.score_indices([rows[r] for r in bucket])  # (b, n_items + 1)
            sub_excluded = None if excluded is None else [excluded[r] for r in bucket]
            top = top_k(scores, k, sub_excluded)  # (b, k) item indices, best first
            for j, (r, row) in enumerate(zip(bucket.tolist(), top.tolist(), strict=True)):
                skip = () if excluded is None else set(excluded[r])
                out[r] = [(items[i - 1], s)
                          for i, s in zip(row, scores[j, row].tolist(), strict=True)
                          if s > -np.inf and i not in skip]
        return out


def _rescore(
    retriever: Retriever, queries: npt.NDArray[np.float32],
    rows: npt.NDArray[np.int64], items: npt.NDArray[np.int64],
) -> npt.NDArray[np.float32]:
    """Exact scores of the ``(row, item)`` pairs from the item vectors (``ann`` + blend)."""
    scores: npt.NDArray[np.float32] = np.einsum(
        "ed,ed->e", retriever.vectors[items], queries[rows])  # (E,)
    if retriever.bias is not None:
        scores += retriever.bias[items]
    return scores


def _ranked(
    scores: npt.NDArray[np.float32], k: int, excluded: Sequence[Sequence[int]] | None
) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
    """Per row of ``scores``, ``top_k``'s items and scores without the excluded ones and
    those scoring ``-inf``/NaN."""
    top = top_k(scores, k, excluded)  # (B, k)
    out = []
    for r, row in enumerate(top):
        row_scores = scores[r, row]
        keep = row_scores > -np.inf
        if excluded is not None and len(excluded[r]):
            keep &= ~np.isin(row, np.asarray(excluded[r], dtype=np.int64))
        out.append((row[keep].astype(np.int64), row_scores[keep]))
    return out


def _ranked_sparse(
    keys: npt.NDArray[np.int64], scores: npt.NDArray[np.float32], width: int, n_rows: int,
    k: int, excluded: Sequence[Sequence[int]] | None,
) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
    """:func:`_ranked` of sparse scores (sorted keys ``row * width + item``, every other
    entry ``-inf``): per row the top ``k`` in ``top_k``'s order (higher score first, equal
    scores by lower item index), without excluded items and ``-inf``/NaN scores."""
    row_of, item_of = keys // width, keys % width
    keep = scores > -np.inf  # also drops NaN
    if excluded is not None:
        lengths = [len(row) for row in excluded]
        if sum(lengths):
            banned = (np.repeat(np.arange(n_rows, dtype=np.int64), lengths) * width
                      + np.fromiter((i for row in excluded for i in row), dtype=np.int64,
                                    count=sum(lengths)))
            keep &= ~np.isin(keys, banned)
    row_of, item_of, kept = row_of[keep], item_of[keep], scores[keep]
    order = np.lexsort((item_of, -kept, row_of))  # by row, score down, item up
    row_of, item_of, kept = row_of[order], item_of[order], kept[order]
    starts = np.searchsorted(row_of, np.arange(n_rows + 1))
    return [(item_of[a:min(b, a + k)].astype(np.int64), kept[a:min(b, a + k)])
            for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True)]


def load_scorer(
    model_dir: str | Path, device: str = "auto", intra_op_threads: int = 1, *,
    retrieval: str = AUTO, candidates: int = DEFAULT_CANDIDATES, ef_search: int | None = None,
) -> OnnxScorer:
    """Load a model directory written by ``streamrec train`` for serving.

    ``retrieval``: ``auto`` (default), ``exact`` or ``ann`` (module doc); ``candidates``:
    items the index retrieves per user in ``ann`` mode; ``ef_search``: the HNSW search
    breadth (default: ``candidates``). In ``ann`` mode the index is built here (about a
    second per 10^4 items on one thread; ``OnnxScorer.retriever.index.build_seconds``).
    """
    return OnnxScorer(read_model_dir(Path(model_dir)), device, intra_op_threads,
                      retrieval=retrieval, candidates=candidates, ef_search=ef_search)


@dataclass(frozen=True)
class _RecommenderSettings:
    """What :class:`OnnxRecommender` pickles as: enough to load it again."""

    model_dir: Path
    device: str
    intra_op_threads: int
    batch_size: int
    retrieval: str
    candidates: int
    ef_search: int | None


class OnnxRecommender(SessionRecommender):
    """A ``SessionRecommender`` over an exported model directory, so offline evaluation
    scores exactly the artifact the stream serves. Prefixes are item indices of the model's
    vocabulary (for a benchmark it is the identity).

    ``retrieval`` as for :func:`load_scorer`, but ``exact`` by default (the reference). With
    ``ann``, :meth:`score` gives the ranks the served index path produces: the retrieved
    candidates keep their exact scores and every other item scores ``-inf``, so a target the
    index did not retrieve is a miss (``models.evaluation``), one it did is ranked among the
    candidates only.

    The artifact is already trained: ``fit`` trains nothing, it binds the model to the
    data's catalogue (``n_items`` must be the model's) and must come before ``score``, as
    for every recommender. Pickles as its model directory and settings.
    """

    def __init__(
        self, model_dir: str | Path, device: str = "auto", intra_op_threads: int = 1,
        batch_size: int = 256, retrieval: str = EXACT, candidates: int = DEFAULT_CANDIDATES,
        ef_search: int | None = None,
    ) -> None:
        settings = _RecommenderSettings(Path(model_dir), device, intra_op_threads, batch_size,
                                        retrieval, candidates, ef_search)
        self._load(settings, fitted=False)

    def _load(self, settings: _RecommenderSettings, fitted: bool) -> None:
        self._settings = settings
        self.scorer = load_scorer(
            settings.model_dir, settings.device, settings.intra_op_threads,
            retrieval=settings.retrieval, candidates=settings.candidates,
            ef_search=settings.ef_search,
        )
        self.name = self.scorer.name
        self.rank_batch_size = settings.batch_size
        self._fitted = fitted

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self._settings, "fitted": self._fitted}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._load(state["settings"], state["fitted"])

    def fit(self, sessions: Sequence[Session], n_items: int) -> None:
        if n_items != self.scorer.n_items:
            raise InvalidInputError(
                f"model directory scores {self.scorer.n_items} items, data has {n_items}"
            )
        self._fitted = True
        logger.info("%s: pre-trained ONNX model, fit() trains nothing", self.name)

    def score(self, prefixes: Sequence[Session]) -> npt.NDArray[np.float32]:
        if not self._fitted:
            raise NotFittedError(
                f"{self.name}: call fit(sessions, n_items) to bind the pre-trained model to "
                "the data's catalogue before scoring"
            )
        n_items = self.scorer.n_items
        check_item_range(prefixes, n_items)
        out = np.empty((len(prefixes), n_items + 1), dtype=np.float32)
        for start in range(0, len(prefixes), self.rank_batch_size):
            chunk = prefixes[start : start + self.rank_batch_size]
            out[start : start + len(chunk)] = self.scorer.candidate_scores(chunk)
        return out


PROBE_HISTORIES = 4
"""Histories the servability check scores: one of every length up to the model's window."""

PROBE_TOLERANCE = 1e-3
"""Largest |encoder @ item_vectors - model.onnx| score difference the servability check
accepts on its probes (the export held it to 1e-4 on CPU; CUDA kernels round differently)."""


def check_servable(scorer: OnnxScorer, k: int = 20) -> None:
    """Check a freshly loaded model before it serves, and warm it: raises
    :class:`ModelDirectoryError` when it must not serve.

    What is checked without PyTorch (the worker has none): ``meta.json`` records that the
    export's ONNX-vs-PyTorch parity check passed and declares the ONNX interface this code
    speaks (:mod:`models.onnx_contract`); the graph's own inputs and outputs are those; a
    batched call on probe histories (the vocabulary's first items, lengths 1 to the model's
    window) returns one finite score per item for every row, and ranking them yields ``k``
    items (or every item of a smaller catalogue). A scorer that ranks through the item index
    (``ann``) also has its encoder graph's interface checked the same way, and its encoder
    and item vectors must reproduce the scores graph's probe scores within
    :data:`PROBE_TOLERANCE`. The calls also warm ONNX Runtime (and the index), so the first
    real micro-batch does not pay for their lazy initialisation.
    """
    directory = scorer.model_dir
    where = f"model {scorer.name} {scorer.version} ({directory.path})"
    onnx_meta = directory.meta.get("onnx") or {}
    parity = onnx_meta.get("parity") or {}
    if not (parity.get("top20_identical") is True and int(parity.get("cases") or 0) > 0):
        raise ModelDirectoryError(f"{where}: meta.json does not record a passed ONNX parity "
                                  "check; re-export it with 'streamrec train'")
    _check_interface(where, onnx_meta, scorer._session, SCORES, "model.onnx")  # noqa: SLF001
    n = scorer.n_items
    probes = [list(range(1, min(n, length) + 1))
              for length in np.linspace(1, scorer.max_seq_len, PROBE_HISTORIES).astype(int)]
    scores = scorer.score_indices(probes)
    if scores.shape != (len(probes), n + 1):
        raise ModelDirectoryError(f"{where}: scores have shape {scores.shape}, expected "
                                  f"{(len(probes), n + 1)}")
    if not np.isfinite(scores[:, 1:]).all():
        raise ModelDirectoryError(f"{where}: the probe call returned NaN or infinite scores")
    if scorer.retriever is not None:
        _check_interface(where, directory.encoder_meta or {}, scorer._encoder,  # noqa: SLF001
                         SESSION, "encoder.onnx")
        rebuilt = scorer.retriever.exact_scores(scorer.encode_indices(probes))
        diff = float(np.max(np.abs(rebuilt[:, 1:] - scores[:, 1:])))
        if not diff <= PROBE_TOLERANCE:
            raise ModelDirectoryError(
                f"{where}: encoder.onnx and item_vectors.npy do not reproduce model.onnx "
                f"(max |diff| {diff:.2e} > {PROBE_TOLERANCE}); re-export the directory or "
                "serve it with retrieval 'exact'")
    ranked = scorer.recommend([scorer.vocabulary.items[:1]], min(k, n))
    if len(ranked[0]) < min(k, n - 1):
        raise ModelDirectoryError(f"{where}: ranked {len(ranked[0])} items, expected "
                                  f"{min(k, n - 1)}")


def _check_interface(
    where: str, section: dict[str, Any], session: Any, output: str, file: str
) -> None:
    """``meta.json``'s ``section`` and the graph ``session`` both declare inputs
    ``item_ids``, ``lengths`` and the one ``output``, or :class:`ModelDirectoryError`."""
    declared = ([i.get("name") for i in section.get("inputs", [])],
                [o.get("name") for o in section.get("outputs", [])])
    expected = ([ITEM_IDS, LENGTHS], [output])
    actual = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    for what, names in (("meta.json", declared), (file, actual)):
        if sorted(names[0]) != sorted(expected[0]) or names[1] != expected[1]:
            raise ModelDirectoryError(
                f"{where}: {what} declares inputs {names[0]} and outputs {names[1]}, this "
                f"worker serves inputs {expected[0]} and outputs {expected[1]}")
