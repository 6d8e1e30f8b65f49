"""Serve a model directory with ONNX Runtime: what the stream calls (see docs/contracts.md).

Usage, for a ``MODEL_DIR`` written by ``streamrec train``::

    scorer = load_scorer("MODEL_DIR", device="auto", intra_op_threads=1)
    scorer.recommend([["17", "4"]], k=3, exclude=[{"4"}])
    # -> [[('23', 11.2), ('17', 10.9), ('8', 9.7)]]

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from models.errors import (
    InvalidInputError,
    ModelDirectoryError,
    NotFittedError,
    ProviderUnavailableError,
)
from models.model_dir import ModelDirectory, read_model_dir
from models.onnx_contract import ITEM_IDS, LENGTHS, SCORES, pad_batch
from models.protocol import Session, SessionRecommender, check_item_range, top_k

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
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


class OnnxScorer:
    """Scores histories of external item ids with a model directory's ONNX graph."""

    def __init__(
        self, model_dir: ModelDirectory, device: str = "auto", intra_op_threads: int = 1
    ) -> None:
        self.model_dir = model_dir
        self.name = model_dir.name
        self.version = model_dir.version
        self.vocabulary = model_dir.vocabulary
        self.n_items = model_dir.n_items
        self.max_seq_len = model_dir.max_seq_len
        self._session = open_session(model_dir.onnx_path, device, intra_op_threads)
        self.provider: str = self._session.get_providers()[0]
        self.loaded_at = datetime.now(UTC)
        logger.info(
            "loaded %s %s from %s on %s", self.name, self.version, model_dir.path, self.provider
        )

    # ------------------------------------------------------------------ index space
    def score_indices(self, rows: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
        """Scores ``(B, n_items + 1)`` of index histories (0 entries are dropped), column 0
        set to ``-inf``."""
        if not len(rows):
            return np.zeros((0, self.n_items + 1), dtype=np.float32)
        ids, lengths = pad_batch(rows, self.max_seq_len)  # (B, L), (B,)
        scores: npt.NDArray[np.float32] = self._session.run(
            [SCORES], {ITEM_IDS: ids, LENGTHS: lengths}
        )[0]  # (B, n_items + 1)
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
        """Top-``k`` ``(item_id, score)`` per history, best first (``top_k`` order), never
        an excluded item nor one scoring ``-inf``/NaN."""
        if k <= 0:
            raise InvalidInputError(f"k must be positive, got {k}")
        if exclude is not None and len(exclude) != len(histories):
            raise InvalidInputError(
                f"exclude has {len(exclude)} rows for {len(histories)} histories"
            )
        encode = self.vocabulary.index
        scores = self.score_indices([[encode(item) for item in h] for h in histories])
        excluded = (
            None if exclude is None else [[i for i in map(encode, row) if i] for row in exclude]
        )
        top = top_k(scores, k, excluded)  # (B, k) item indices, best first
        items = self.vocabulary.items
        out = []
        for r, row in enumerate(top.tolist()):
            skip = () if excluded is None else set(excluded[r])
            row_scores = scores[r, row].tolist()
            out.append([
                (items[i - 1], s)
                for i, s in zip(row, row_scores, strict=True)
                if s > -np.inf and i not in skip
            ])
        return out


def load_scorer(
    model_dir: str | Path, device: str = "auto", intra_op_threads: int = 1
) -> OnnxScorer:
    """Load a model directory written by ``streamrec train`` for serving."""
    return OnnxScorer(read_model_dir(Path(model_dir)), device, intra_op_threads)


class OnnxRecommender(SessionRecommender):
    """A ``SessionRecommender`` over an exported model directory, so offline evaluation
    scores exactly the artifact the stream serves. Prefixes are item indices of the model's
    vocabulary (for a benchmark it is the identity).

    The artifact is already trained: ``fit`` trains nothing, it binds the model to the
    data's catalogue (``n_items`` must be the model's) and must come before ``score``, as
    for every recommender. Pickles as its model directory and settings.
    """

    def __init__(
        self, model_dir: str | Path, device: str = "auto", intra_op_threads: int = 1,
        batch_size: int = 256,
    ) -> None:
        self._load((Path(model_dir), device, intra_op_threads, batch_size), fitted=False)

    def _load(self, settings: tuple[Path, str, int, int], fitted: bool) -> None:
        model_dir, device, intra_op_threads, batch_size = settings
        self._settings = settings
        self.scorer = load_scorer(model_dir, device, intra_op_threads)
        self.name = self.scorer.name
        self.rank_batch_size = batch_size
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
            out[start : start + len(chunk)] = self.scorer.score_indices(chunk)
        return out


PROBE_HISTORIES = 4
"""Histories the servability check scores: one of every length up to the model's window."""


def check_servable(scorer: OnnxScorer, k: int = 20) -> None:
    """Check a freshly loaded model before it serves, and warm it: raises
    :class:`ModelDirectoryError` when it must not serve.

    What is checked without PyTorch (the worker has none): ``meta.json`` records that the
    export's ONNX-vs-PyTorch parity check passed and declares the ONNX interface this code
    speaks (:mod:`models.onnx_contract`); the graph's own inputs and outputs are those; a
    batched call on probe histories (the vocabulary's first items, lengths 1 to the model's
    window) returns one finite score per item for every row, and ranking them yields ``k``
    items (or every item of a smaller catalogue). The call also warms ONNX Runtime, so the
    first real micro-batch does not pay for its lazy initialisation.
    """
    directory = scorer.model_dir
    where = f"model {scorer.name} {scorer.version} ({directory.path})"
    onnx_meta = directory.meta.get("onnx") or {}
    parity = onnx_meta.get("parity") or {}
    if not (parity.get("top20_identical") is True and int(parity.get("cases") or 0) > 0):
        raise ModelDirectoryError(f"{where}: meta.json does not record a passed ONNX parity "
                                  "check; re-export it with 'streamrec train'")
    declared = ([i.get("name") for i in onnx_meta.get("inputs", [])],
                [o.get("name") for o in onnx_meta.get("outputs", [])])
    expected = ([ITEM_IDS, LENGTHS], [SCORES])
    session = scorer._session  # noqa: SLF001 - the graph's own interface
    actual = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    for what, names in (("meta.json", declared), ("model.onnx", actual)):
        if sorted(names[0]) != sorted(expected[0]) or names[1] != expected[1]:
            raise ModelDirectoryError(
                f"{where}: {what} declares inputs {names[0]} and outputs {names[1]}, this "
                f"worker serves inputs {expected[0]} and outputs {expected[1]}")
    n = scorer.n_items
    probes = [list(range(1, min(n, length) + 1))
              for length in np.linspace(1, scorer.max_seq_len, PROBE_HISTORIES).astype(int)]
    scores = scorer.score_indices(probes)
    if scores.shape != (len(probes), n + 1):
        raise ModelDirectoryError(f"{where}: scores have shape {scores.shape}, expected "
                                  f"{(len(probes), n + 1)}")
    if not np.isfinite(scores[:, 1:]).all():
        raise ModelDirectoryError(f"{where}: the probe call returned NaN or infinite scores")
    ranked = scorer.recommend([scorer.vocabulary.items[:1]], min(k, n))
    if len(ranked[0]) < min(k, n - 1):
        raise ModelDirectoryError(f"{where}: ranked {len(ranked[0])} items, expected "
                                  f"{min(k, n - 1)}")
