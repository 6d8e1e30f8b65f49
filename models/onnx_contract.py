"""The exported scorer's interface: what ``models.export`` writes and ``models.serving`` runs.

The scores graph (``model.onnx``), opset :data:`OPSET`, both axes dynamic:

* input ``item_ids`` ``(batch, seq)`` int64: histories oldest first, right-padded with 0;
* input ``lengths`` ``(batch,)`` int64: real items per row, at least 1;
* output ``scores`` ``(batch, n_items + 1)`` float32: column 0 (padding/OOV) is far below
  every real score.

The retrieval pair beside it (model directories exported since the ANN path; optional):

* the encoder graph (``encoder.onnx``): the same two inputs, output ``session`` ``(batch, d)``
  float32, exactly the vector the scores graph multiplies (temperature and normalisation
  included);
* the item table (``item_vectors.npy``, float32 ``(n_items + 1, d)``) and, only when some
  item has a score offset, ``item_bias.npy`` (float32 ``(n_items + 1,)``), such that
  ``scores[:, 1:] == (session @ item_vectors.T + item_bias)[:, 1:]`` (checked at export).

:func:`pad_batch` builds the two inputs from item-index histories; training, parity checks
and serving all pad through it. Numpy and the standard library only (no torch, no onnx).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

OPSET = 17
"""ONNX opset the exporter targets (recorded in ``meta.json`` as ``onnx.opset``)."""

ITEM_IDS = "item_ids"
LENGTHS = "lengths"
SCORES = "scores"
SESSION = "session"

ENCODER_FILE = "encoder.onnx"
ITEM_VECTORS_FILE = "item_vectors.npy"
ITEM_BIAS_FILE = "item_bias.npy"

INPUTS: tuple[dict[str, Any], ...] = (
    {"name": ITEM_IDS, "dtype": "int64", "shape": ["batch", "seq"],
     "doc": "item indices oldest first, right-padded with 0 (0 = padding/OOV)"},
    {"name": LENGTHS, "dtype": "int64", "shape": ["batch"],
     "doc": "number of real items per row, >= 1"},
)
OUTPUTS: tuple[dict[str, Any], ...] = (
    {"name": SCORES, "dtype": "float32", "shape": ["batch", "n_items + 1"],
     "doc": "score of every item index per row; column 0 is never a recommendation"},
)

ENCODER_OUTPUTS: tuple[dict[str, Any], ...] = (
    {"name": SESSION, "dtype": "float32", "shape": ["batch", "d"],
     "doc": "session vector; its dot product with item_vectors (+ item_bias) is the score"},
)


def describe() -> dict[str, Any]:
    """The ``onnx`` section of ``meta.json``: inputs, outputs and opset.

    >>> section = describe()
    >>> [i["name"] for i in section["inputs"]], section["opset"]
    (['item_ids', 'lengths'], 17)
    """
    return {
        "inputs": [dict(i) for i in INPUTS],
        "outputs": [dict(o) for o in OUTPUTS],
        "opset": OPSET,
    }


def describe_encoder(dim: int, has_bias: bool) -> dict[str, Any]:
    """The ``onnx.encoder`` section of ``meta.json`` (without its parity record).

    >>> section = describe_encoder(96, has_bias=False)
    >>> [o["name"] for o in section["outputs"]], section["dim"], section["item_bias"]
    (['session'], 96, None)
    """
    return {
        "file": ENCODER_FILE,
        "item_vectors": ITEM_VECTORS_FILE,
        "item_bias": ITEM_BIAS_FILE if has_bias else None,
        "dim": dim,
        "inputs": [dict(i) for i in INPUTS],
        "outputs": [dict(o) for o in ENCODER_OUTPUTS],
        "opset": OPSET,
    }


def pad_batch(
    prefixes: Sequence[Sequence[int]], max_seq_len: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Right-padded ``(item_ids (B, L), lengths (B,))`` keeping each row's last items.

    OOV entries (index 0) are dropped first, then each row keeps its ``max_seq_len`` most
    recent items. A row left empty becomes ``[0]`` with length 1: the model then answers
    with its context-free guess.

    >>> ids, lengths = pad_batch([[1, 0, 2, 3], [], [4]], max_seq_len=2)
    >>> ids.tolist(), lengths.tolist()
    ([[2, 3], [0, 0], [4, 0]], [2, 1, 1])
    """
    rows = [[int(i) for i in p if i][-max_seq_len:] or [0] for p in prefixes]
    width = max((len(r) for r in rows), default=1)
    ids = np.zeros((len(rows), width), dtype=np.int64)  # (B, L)
    lengths = np.empty(len(rows), dtype=np.int64)  # (B,)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        lengths[i] = len(row)
    return ids, lengths
