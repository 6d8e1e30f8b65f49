"""Export a trained session model to ONNX and prove the export scores like PyTorch.

The exported graph is the model's inference path (``SessionModel.forward``):

* inputs ``item_ids`` ``(batch, seq)`` int64, histories oldest first, right-padded with 0,
  and ``lengths`` ``(batch,)`` int64, real items per row (>= 1);
* output ``scores`` ``(batch, n_items + 1)`` float32; column 0 (padding/OOV) is far below
  every real score.

Both axes are dynamic. :func:`export_onnx` refuses to leave a file behind unless
:func:`check_parity` passes: max absolute score difference <= ``atol`` and the same top-20
as PyTorch on random prefixes.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn

from models.errors import ModelsError
from models.neural.base import SessionModel, pad_batch

logger = logging.getLogger(__name__)

INPUTS = (
    {"name": "item_ids", "dtype": "int64", "shape": ["batch", "seq"],
     "doc": "item indices oldest first, right-padded with 0 (0 = padding/OOV)"},
    {"name": "lengths", "dtype": "int64", "shape": ["batch"],
     "doc": "number of real items per row, >= 1"},
)
OUTPUTS = (
    {"name": "scores", "dtype": "float32", "shape": ["batch", "n_items + 1"],
     "doc": "score of every item index per row; column 0 is never a recommendation"},
)
OPSET = 17


class ExportParityError(ModelsError):
    """The ONNX graph does not score like the PyTorch model it was exported from.

    The export was deleted. This is a bug in the model's inference path (an operation the
    ONNX exporter translates differently, e.g. data-dependent shapes): fix the model, or
    report the architecture, opset and the figures in the message.
    """


@dataclass(frozen=True)
class ParityReport:
    cases: int
    max_abs_diff: float
    top20_identical: bool


class InferenceGraph(nn.Module):
    """The graph that is exported: the model's inference path with the candidate item
    table precomputed (normalised and transposed once), so a scoring call reads the
    ``(d, n_items + 1)`` table once instead of re-normalising it."""

    table: torch.Tensor  # buffer (d, n_items + 1)
    pad: torch.Tensor  # buffer (n_items + 1,)

    def __init__(self, model: SessionModel) -> None:
        super().__init__()
        self.model = model
        self.temperature = float(getattr(model.config, "temperature", 0.0))
        with torch.no_grad():
            items = model.item_matrix().detach().float()
            if self.temperature > 0.0:
                items = F.normalize(items, dim=-1)
        self.register_buffer("table", items.T.contiguous())  # (d, N + 1)
        self.register_buffer("pad", model.pad_scores.detach().clone())  # (N + 1,)

    def forward(self, item_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden = self.model.session_vector(item_ids, lengths)  # (B, d)
        if self.temperature > 0.0:
            hidden = self.temperature * F.normalize(hidden, dim=-1)
        return hidden @ self.table + self.pad  # (B, N + 1)


def onnx_io() -> dict[str, list[dict[str, Any]]]:
    """The ``onnx`` section of ``meta.json``: input and output descriptions."""
    return {"inputs": [dict(i) for i in INPUTS], "outputs": [dict(o) for o in OUTPUTS]}


def export_onnx(
    model: SessionModel, path: Path, *, parity_cases: int = 64, seed: int = 0, atol: float = 1e-4
) -> ParityReport:
    """Write ``model``'s inference path to ``path`` as ONNX and check parity (see module doc)."""
    path = Path(path)
    model = model.to("cpu").eval()
    ids, lengths = pad_batch([[1, 2, 3], [4], [5, 6]], model.config.max_seq_len)
    ids = np.minimum(ids, model.config.n_items)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        torch.onnx.export(
            InferenceGraph(model).eval(),
            (torch.from_numpy(ids), torch.from_numpy(lengths)),
            str(path),
            dynamo=False,
            input_names=[str(i["name"]) for i in INPUTS],
            output_names=[str(o["name"]) for o in OUTPUTS],
            dynamic_axes={
                "item_ids": {0: "batch", 1: "seq"},
                "lengths": {0: "batch"},
                "scores": {0: "batch"},
            },
            opset_version=OPSET,
        )
    onnx.checker.check_model(str(path))
    try:
        report = check_parity(model, path, cases=parity_cases, seed=seed, atol=atol)
    except ExportParityError:
        path.unlink(missing_ok=True)
        raise
    logger.info(
        "exported %s to %s: %d parity cases, max |diff| %.2e, top-20 identical",
        model.architecture, path, report.cases, report.max_abs_diff,
    )
    return report


def random_prefixes(n_items: int, max_seq_len: int, cases: int, seed: int) -> list[list[int]]:
    """Random histories of every length from 1 to ``max_seq_len`` (both ends included)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_seq_len + 1, size=cases)
    lengths[:2] = (1, max_seq_len)
    return [rng.integers(1, n_items + 1, size=n).tolist() for n in lengths]


def check_parity(
    model: SessionModel, onnx_path: Path, *, cases: int = 64, seed: int = 0, atol: float = 1e-4
) -> ParityReport:
    """Compare ONNX Runtime (CPU) with PyTorch on random prefixes, as one batch and one row
    at a time; raise :class:`ExportParityError` on any disagreement.

    Top-20 lists must be identical; a swap between two items whose PyTorch scores tie
    within 1e-6 is tolerated (the order of exact ties is arbitrary).
    """
    model = model.to("cpu").eval()
    prefixes = random_prefixes(model.config.n_items, model.config.max_seq_len, cases, seed)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    groups = [prefixes] + [[p] for p in prefixes[:4]]
    worst, n_checked = 0.0, 0
    for group in groups:
        ids, lengths = pad_batch(group, model.config.max_seq_len)
        with torch.no_grad():
            expected = model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
        got = session.run(["scores"], {"item_ids": ids, "lengths": lengths})[0]
        if got.shape != expected.shape:
            raise ExportParityError(f"ONNX scores shape {got.shape} != PyTorch {expected.shape}")
        diff = float(np.max(np.abs(got[:, 1:] - expected[:, 1:])))
        worst = max(worst, diff)
        if not diff <= atol:
            raise ExportParityError(
                f"{model.architecture}: max |ONNX - PyTorch| score difference {diff:.3e} > {atol}"
            )
        for row in range(len(group)):
            top_torch = _top(expected[row], 20)
            top_onnx = _top(got[row], 20)
            differ = top_torch != top_onnx
            if differ.any() and not np.all(
                np.abs(expected[row, top_torch[differ]] - expected[row, top_onnx[differ]]) <= 1e-6
            ):
                raise ExportParityError(
                    f"{model.architecture}: ONNX top-20 {top_onnx.tolist()} differs from "
                    f"PyTorch {top_torch.tolist()} (prefix length {lengths[row]})"
                )
        n_checked += len(group)
    return ParityReport(n_checked, worst, True)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    real = scores[1:]
    k = min(k, len(real))
    part = np.argpartition(-real, k - 1)[:k]
    return part[np.argsort(-real[part], kind="stable")] + 1
