"""Export a trained session model to ONNX and prove the export scores like PyTorch.

The exported graph is the model's inference path (``SessionModel.forward`` of the equivalent
model ``SessionModel.for_export`` returns) with the interface of ``models.onnx_contract``
(inputs ``item_ids``, ``lengths``; output ``scores``; both axes dynamic; opset ``OPSET``).
:func:`export_onnx` refuses to leave a file behind unless :func:`check_parity` passes (it
compares with the model itself): max absolute score difference <= ``atol`` and the same
top-20 as PyTorch on random prefixes, ranked by the one ``models.protocol.top_k``.

Write side: imports PyTorch and onnx (the ``[train]`` install). Serving never imports it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from models.errors import ExportParityError
from models.neural.base import SessionModel
from models.onnx_contract import ITEM_IDS, LENGTHS, OPSET, SCORES, pad_batch
from models.protocol import top_k
from models.serving import open_session

logger = logging.getLogger(__name__)

PARITY_TOP = 20
"""Length of the top lists ONNX and PyTorch must agree on."""

TIE_TOLERANCE = 1e-6
"""Two PyTorch scores this close count as a tie: ONNX may order them either way."""


@dataclass(frozen=True)
class ParityReport:
    """What :func:`check_parity` verified (stored in ``meta.json`` as ``onnx.parity``)."""

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


def export_onnx(
    model: SessionModel, path: Path, *, parity_cases: int = 64, seed: int = 0, atol: float = 1e-4
) -> ParityReport:
    """Write ``model``'s inference path to ``path`` as ONNX and check parity (see module doc)."""
    path = Path(path)
    model = model.to("cpu").eval()
    traced = model.for_export()  # e.g. SessAttnText with its text folded into the item table
    ids, lengths = pad_batch([[1, 2, 3], [4], [5, 6]], model.config.max_seq_len)
    ids = np.minimum(ids, model.config.n_items)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        torch.onnx.export(
            InferenceGraph(traced).eval(),
            (torch.from_numpy(ids), torch.from_numpy(lengths)),
            str(path),
            dynamo=False,
            input_names=[ITEM_IDS, LENGTHS],
            output_names=[SCORES],
            dynamic_axes={
                ITEM_IDS: {0: "batch", 1: "seq"},
                LENGTHS: {0: "batch"},
                SCORES: {0: "batch"},
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
        "exported %s to %s: %d parity cases, max |diff| %.2e, top-%d identical",
        model.architecture, path, report.cases, report.max_abs_diff, PARITY_TOP,
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

    Top-20 lists (``models.protocol.top_k``) must be identical; a swap between two items
    whose PyTorch scores tie within ``TIE_TOLERANCE`` is tolerated (float noise can order
    near-ties either way).
    """
    model = model.to("cpu").eval()
    prefixes = random_prefixes(model.config.n_items, model.config.max_seq_len, cases, seed)
    session = open_session(Path(onnx_path), device="cpu", intra_op_threads=1)
    groups = [prefixes] + [[p] for p in prefixes[:4]]
    worst, n_checked = 0.0, 0
    for group in groups:
        ids, lengths = pad_batch(group, model.config.max_seq_len)
        with torch.no_grad():
            expected = model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
        got = session.run([SCORES], {ITEM_IDS: ids, LENGTHS: lengths})[0]
        if got.shape != expected.shape:
            raise ExportParityError(f"ONNX scores shape {got.shape} != PyTorch {expected.shape}")
        diff = float(np.max(np.abs(got[:, 1:] - expected[:, 1:])))
        worst = max(worst, diff)
        if not diff <= atol:
            raise ExportParityError(
                f"{model.architecture}: max |ONNX - PyTorch| score difference {diff:.3e} > {atol}"
            )
        tops_torch, tops_onnx = top_k(expected, PARITY_TOP), top_k(got, PARITY_TOP)  # (B, 20)
        for row in range(len(group)):
            top_torch, top_onnx = tops_torch[row], tops_onnx[row]
            differ = top_torch != top_onnx
            gap = np.abs(expected[row, top_torch[differ]] - expected[row, top_onnx[differ]])
            if differ.any() and not np.all(gap <= TIE_TOLERANCE):
                raise ExportParityError(
                    f"{model.architecture}: ONNX top-{PARITY_TOP} {top_onnx.tolist()} differs from "
                    f"PyTorch {top_torch.tolist()} (prefix length {lengths[row]})"
                )
        n_checked += len(group)
    return ParityReport(n_checked, worst, True)
