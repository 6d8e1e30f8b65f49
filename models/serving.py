"""Serve a model directory with ONNX Runtime: what the stream calls (see docs/contracts.md).

>>> scorer = load_scorer("MODEL_DIR")                                   # doctest: +SKIP
>>> scorer.recommend([["17", "4"]], k=3, exclude=[{"4"}])              # doctest: +SKIP
[[('23', 11.2), ('17', 10.9), ('8', 9.7)]]

History handling: histories are external item ids, oldest first; ids the vocabulary does
not know map to the OOV index 0 and are then dropped (the model never saw index 0 inside a
history), the rest is truncated to the model's ``max_seq_len`` most recent items. A history
with no known item is scored as the single OOV item (the model's context-free guess).
Index 0 and excluded items are never recommended.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from models.errors import InvalidInputError, ModelsError
from models.protocol import Session, top_k_from_scores
from models.registry import ModelDirectory, read_model_dir

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
_CUDA_LIBRARIES = ("libcuda.so.1", "libcudart.so.12", "libcublasLt.so.12", "libcudnn.so.9")


class ProviderUnavailableError(ModelsError):
    """``device="cuda"`` was requested but ONNX Runtime cannot use CUDA on this machine.

    Either this onnxruntime build lacks the CUDA provider, or the CUDA/cuDNN libraries or
    the GPU driver cannot be loaded. Fix: use ``device="auto"`` (falls back to CPU) or
    ``"cpu"``, or install the NVIDIA driver, CUDA 12 and cuDNN 9 libraries.
    """


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
    CPU only; ``cpu`` -> CPU; ``cuda`` -> CUDA then CPU, or :class:`ProviderUnavailableError`."""
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


class OnnxScorer:
    """Scores histories of external item ids with a model directory's ONNX graph.

    Input buffers are allocated once and reused (grown when a bigger batch comes), so a
    steady stream of micro-batches allocates nothing but the score matrix.
    """

    def __init__(
        self, model_dir: ModelDirectory, device: str = "auto", intra_op_threads: int = 1
    ) -> None:
        self.model_dir = model_dir
        self.name = model_dir.name
        self.version = model_dir.version
        self.vocabulary = model_dir.vocabulary
        self.n_items = model_dir.n_items
        self.max_seq_len = model_dir.max_seq_len
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(model_dir.onnx_path), options, providers=select_providers(device)
        )
        self.provider = self._session.get_providers()[0]
        self.loaded_at = datetime.now(UTC)
        self._ids = np.zeros(0, dtype=np.int64)
        self._lengths = np.zeros(0, dtype=np.int64)
        logger.info(
            "loaded %s %s from %s on %s", self.name, self.version, model_dir.path, self.provider
        )

    # ------------------------------------------------------------------ index space
    def _inputs(self, rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Right-padded ``(B, W)`` ids and ``(B,)`` lengths in the reused buffers."""
        batch = len(rows)
        rows = [[i for i in row if i][-self.max_seq_len :] or [0] for row in rows]
        width = max((len(r) for r in rows), default=1)
        if self._ids.size < batch * width:
            self._ids = np.zeros(max(batch * width, 2 * self._ids.size), dtype=np.int64)
        if self._lengths.size < batch:
            self._lengths = np.zeros(max(batch, 2 * self._lengths.size), dtype=np.int64)
        ids = self._ids[: batch * width].reshape(batch, width)  # contiguous view (B, W)
        ids.fill(0)
        lengths = self._lengths[:batch]
        for r, row in enumerate(rows):
            ids[r, : len(row)] = row
            lengths[r] = len(row)
        return ids, lengths

    def score_indices(self, rows: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
        """Scores ``(B, n_items + 1)`` of index histories (0 entries are dropped), column 0
        set to ``-inf``."""
        if not len(rows):
            return np.zeros((0, self.n_items + 1), dtype=np.float32)
        ids, lengths = self._inputs(rows)
        scores = self._session.run(["scores"], {"item_ids": ids, "lengths": lengths})[0]
        scores[:, 0] = -np.inf
        return scores

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
        """Top-``k`` ``(item_id, score)`` per history, best first, never an excluded item."""
        if k <= 0:
            raise InvalidInputError(f"k must be positive, got {k}")
        if exclude is not None and len(exclude) != len(histories):
            raise InvalidInputError(
                f"exclude has {len(exclude)} rows for {len(histories)} histories"
            )
        encode = self.vocabulary.index
        scores = self.score_indices([[encode(item) for item in h] for h in histories])
        if exclude is not None:
            for r, row in enumerate(exclude):
                known = [i for i in map(encode, row) if i]
                if known:
                    scores[r, known] = -np.inf
        top = top_k_inplace(scores, k)
        items = self.vocabulary.items
        out = []
        for r in range(len(histories)):
            row_scores = scores[r, top[r]]
            out.append(
                [(items[i - 1], float(s)) for i, s in zip(top[r], row_scores, strict=True)
                 if s > -np.inf]
            )
        return out


def top_k_inplace(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
    """Best-first top-``k`` columns per row of an already masked score matrix (no copy of
    the scores; masked entries are ``-inf`` and are dropped by the caller)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]  # (B, k)
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def load_scorer(
    model_dir: str | Path, device: str = "auto", intra_op_threads: int = 1
) -> OnnxScorer:
    """Load a model directory written by ``streamrec train`` for serving."""
    return OnnxScorer(read_model_dir(Path(model_dir)), device, intra_op_threads)


class OnnxRecommender:
    """A ``SessionRecommender`` over an exported model directory, so offline evaluation
    scores exactly the artifact the stream serves. Prefixes are item indices (for a
    benchmark the vocabulary is the identity). ``fit`` trains nothing: the artifact is
    already trained; it only checks the catalogue size."""

    def __init__(
        self, model_dir: str | Path, device: str = "auto", intra_op_threads: int = 1,
        batch_size: int = 256,
    ) -> None:
        self.scorer = load_scorer(model_dir, device, intra_op_threads)
        self.name = self.scorer.name
        self._batch_size = batch_size

    def fit(self, sessions: Sequence[Session], n_items: int) -> None:
        if n_items != self.scorer.n_items:
            raise InvalidInputError(
                f"model directory scores {self.scorer.n_items} items, data has {n_items}"
            )
        logger.info("%s: pre-trained ONNX model, fit() trains nothing", self.name)

    def score(self, prefixes: Sequence[Session]) -> npt.NDArray[np.float32]:
        out = np.empty((len(prefixes), self.scorer.n_items + 1), dtype=np.float32)
        for start in range(0, len(prefixes), self._batch_size):
            chunk = prefixes[start : start + self._batch_size]
            out[start : start + len(chunk)] = self.scorer.score_indices(chunk)
        return out

    def rank(
        self,
        prefixes: Sequence[Session],
        k: int,
        exclude: Sequence[Sequence[int]] | None = None,
    ) -> npt.NDArray[np.int64]:
        out = np.empty((len(prefixes), min(k, self.scorer.n_items)), dtype=np.int64)
        for start in range(0, len(prefixes), self._batch_size):
            chunk = prefixes[start : start + self._batch_size]
            rows = None if exclude is None else exclude[start : start + len(chunk)]
            out[start : start + len(chunk)] = top_k_from_scores(
                self.scorer.score_indices(chunk), k, rows
            )
        return out
