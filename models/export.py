"""Export a trained session model to ONNX and prove the export scores like PyTorch.

The exported graph is the model's inference path (``SessionModel.forward`` of the equivalent
model ``SessionModel.for_export`` returns) with the interface of ``models.onnx_contract``
(inputs ``item_ids``, ``lengths``; output ``scores``; both axes dynamic; opset ``OPSET``).
:func:`export_onnx` refuses to leave a file behind unless :func:`check_parity` passes (it
compares with the model itself): max absolute score difference <= ``atol`` and the same
top-20 as PyTorch on random prefixes, ranked by the one ``models.protocol.top_k``.

:func:`export_encoder` writes the retrieval pair beside it (``models.onnx_contract``): the
encoder graph (the same inputs, output ``session``: the vector the scores graph multiplies)
and the item table it is multiplied with, transposed back (``item_vectors.npy``, plus
``item_bias.npy`` if an item other than 0 has a score offset). :func:`check_encoder_parity`
holds ``session @ item_vectors.T + item_bias`` to the exported ``model.onnx`` scores with
the same tolerance and top-20 rule, or the pair is not written.

Write side: imports PyTorch and onnx (the ``[train]`` install). Serving never imports it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from models.errors import ExportParityError
from models.neural.base import SessionModel
from models.onnx_contract import (
    ENCODER_FILE,
    ITEM_BIAS_FILE,
    ITEM_IDS,
    ITEM_VECTORS_FILE,
    LENGTHS,
    OPSET,
    SCORES,
    SESSION,
    pad_batch,
)
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


class EncoderGraph(nn.Module):
    """The session half of the scores graph: the session vector ``(B, d)``, scaled by the
    temperature and L2-normalised when the model scores by scaled cosine, so that its dot
    product with :meth:`item_table`'s rows (plus :meth:`item_bias`) is the model's score."""

    def __init__(self, model: SessionModel) -> None:
        super().__init__()
        self.model = model
        self.temperature = float(getattr(model.config, "temperature", 0.0))

    def forward(self, item_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden = self.model.session_vector(item_ids, lengths)  # (B, d)
        if self.temperature > 0.0:
            hidden = self.temperature * F.normalize(hidden, dim=-1)
        return hidden  # (B, d)

    def item_table(self) -> torch.Tensor:
        """Item vectors ``(n_items + 1, d)`` as scored: normalised when the model is."""
        with torch.no_grad():
            items = self.model.item_matrix().detach().float()
            if self.temperature > 0.0:
                items = F.normalize(items, dim=-1)
        return items

    def item_bias(self) -> torch.Tensor:
        """Score offset per item ``(n_items + 1,)`` (``PAD_SCORE`` at 0, else zeros)."""
        return self.model.pad_scores.detach().float().clone()


class InferenceGraph(nn.Module):
    """The graph that is exported: the model's inference path with the candidate item
    table precomputed (normalised and transposed once), so a scoring call reads the
    ``(d, n_items + 1)`` table once instead of re-normalising it."""

    table: torch.Tensor  # buffer (d, n_items + 1)
    pad: torch.Tensor  # buffer (n_items + 1,)

    def __init__(self, model: SessionModel) -> None:
        super().__init__()
        self.encoder = EncoderGraph(model)
        self.register_buffer("table", self.encoder.item_table().T.contiguous())  # (d, N + 1)
        self.register_buffer("pad", self.encoder.item_bias())  # (N + 1,)

    def forward(self, item_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder(item_ids, lengths) @ self.table + self.pad  # (B, N + 1)


def _to_onnx(graph: nn.Module, model: SessionModel, path: Path, output: str,
             output_axes: dict[int, str]) -> None:
    """Trace ``graph`` (inputs ``item_ids``, ``lengths``) into ``path`` and check the file."""
    ids, lengths = pad_batch([[1, 2, 3], [4], [5, 6]], model.config.max_seq_len)
    ids = np.minimum(ids, model.config.n_items)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        torch.onnx.export(
            graph.eval(),
            (torch.from_numpy(ids), torch.from_numpy(lengths)),
            str(path),
            dynamo=False,
            input_names=[ITEM_IDS, LENGTHS],
            output_names=[output],
            dynamic_axes={
                ITEM_IDS: {0: "batch", 1: "seq"},
                LENGTHS: {0: "batch"},
                output: output_axes,
            },
            opset_version=OPSET,
        )
    onnx.checker.check_model(str(path))


def export_onnx(
    model: SessionModel, path: Path, *, parity_cases: int = 64, seed: int = 0, atol: float = 1e-4
) -> ParityReport:
    """Write ``model``'s inference path to ``path`` as ONNX and check parity (see module doc)."""
    path = Path(path)
    model = model.to("cpu").eval()
    traced = model.for_export()  # e.g. SessAttnText with its text folded into the item table
    _to_onnx(InferenceGraph(traced), model, path, SCORES, {0: "batch"})
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
    worst, n_checked = 0.0, 0
    for group in [prefixes] + [[p] for p in prefixes[:4]]:
        ids, lengths = pad_batch(group, model.config.max_seq_len)
        with torch.no_grad():
            expected = model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
        got = session.run([SCORES], {ITEM_IDS: ids, LENGTHS: lengths})[0]
        names = (model.architecture, "ONNX", "PyTorch")
        worst = max(worst, _compare(expected, got, lengths, names, atol, TIE_TOLERANCE))
        n_checked += len(group)
    return ParityReport(n_checked, worst, True)


def _compare(
    expected: npt.NDArray[np.float32], got: npt.NDArray[np.float32],
    lengths: npt.NDArray[np.int64], names: tuple[str, str, str], atol: float, ties: float,
) -> float:
    """Max |got - expected| over the real items (columns 1..); raises
    :class:`ExportParityError` when it exceeds ``atol`` or when a row's top-20 differs other
    than by swapping items whose ``expected`` scores are within ``ties``. ``names``:
    (architecture, what ``got`` is, what ``expected`` is), for the messages."""
    architecture, what, reference = names
    if got.shape != expected.shape:
        raise ExportParityError(f"{architecture}: {what} scores shape {got.shape} != "
                                f"{reference} {expected.shape}")
    diff = float(np.max(np.abs(got[:, 1:] - expected[:, 1:])))
    if not diff <= atol:
        raise ExportParityError(
            f"{architecture}: max |{what} - {reference}| score difference {diff:.3e} > {atol}"
        )
    tops_expected, tops_got = top_k(expected, PARITY_TOP), top_k(got, PARITY_TOP)  # (B, 20)
    for row in range(len(expected)):
        top_expected, top_got = tops_expected[row], tops_got[row]
        differ = top_expected != top_got
        gap = np.abs(expected[row, top_expected[differ]] - expected[row, top_got[differ]])
        if differ.any() and not np.all(gap <= ties):
            raise ExportParityError(
                f"{architecture}: {what} top-{PARITY_TOP} {top_got.tolist()} differs from "
                f"{reference} {top_expected.tolist()} (prefix length {lengths[row]})"
            )
    return diff


# --------------------------------------------------------------------------- retrieval pair
@dataclass(frozen=True)
class EncoderExport:
    """What :func:`export_encoder` wrote (stored in ``meta.json`` as ``onnx.encoder``)."""

    dim: int
    has_bias: bool
    parity: ParityReport


def export_encoder(
    model: SessionModel, out_dir: Path, scores_path: Path, *, parity_cases: int = 64,
    seed: int = 0, atol: float = 1e-4,
) -> EncoderExport:
    """Write ``encoder.onnx``, ``item_vectors.npy`` (and ``item_bias.npy`` when needed) into
    ``out_dir`` and check them against the exported scores graph ``scores_path`` (see
    :func:`check_encoder_parity`); on failure nothing of the pair is left behind."""
    out_dir = Path(out_dir)
    model = model.to("cpu").eval()
    encoder = EncoderGraph(model.for_export())
    paths = [out_dir / ENCODER_FILE, out_dir / ITEM_VECTORS_FILE, out_dir / ITEM_BIAS_FILE]
    for stale in paths:
        stale.unlink(missing_ok=True)
    try:
        _to_onnx(encoder, model, paths[0], SESSION, {0: "batch"})
        vectors = encoder.item_table().numpy().astype(np.float32)  # (N + 1, d)
        bias = encoder.item_bias().numpy().astype(np.float32)  # (N + 1,)
        has_bias = bool(np.any(bias[1:] != 0.0))
        np.save(paths[1], vectors)
        if has_bias:
            np.save(paths[2], bias)
        report = check_encoder_parity(model, out_dir, scores_path, cases=parity_cases,
                                      seed=seed, atol=atol)
    except Exception:
        for path in paths:
            path.unlink(missing_ok=True)
        raise
    logger.info(
        "exported the %s encoder (d=%d%s) to %s: %d parity cases against %s, max |diff| %.2e",
        model.architecture, vectors.shape[1], ", item bias" if has_bias else "", paths[0],
        report.cases, scores_path.name, report.max_abs_diff,
    )
    return EncoderExport(int(vectors.shape[1]), has_bias, report)


def check_encoder_parity(
    model: SessionModel, out_dir: Path, scores_path: Path, *, cases: int = 64, seed: int = 0,
    atol: float = 1e-4,
) -> ParityReport:
    """Hold ``session @ item_vectors.T + item_bias`` (encoder in ONNX Runtime, product in
    numpy) to the scores graph's output on random prefixes, batched and one row at a time:
    max |diff| <= ``atol`` over the real items and the same top-20, where a swap of two
    items whose reference scores differ by at most twice the measured difference (float
    noise on either side) is tolerated. Raises :class:`ExportParityError` otherwise."""
    out_dir = Path(out_dir)
    prefixes = random_prefixes(model.config.n_items, model.config.max_seq_len, cases, seed)
    encoder = open_session(out_dir / ENCODER_FILE, device="cpu", intra_op_threads=1)
    scorer = open_session(Path(scores_path), device="cpu", intra_op_threads=1)
    vectors = np.load(out_dir / ITEM_VECTORS_FILE)  # (N + 1, d)
    bias_path = out_dir / ITEM_BIAS_FILE
    bias = np.load(bias_path) if bias_path.is_file() else np.zeros(len(vectors), np.float32)
    worst, n_checked = 0.0, 0
    for group in [prefixes] + [[p] for p in prefixes[:4]]:
        ids, lengths = pad_batch(group, model.config.max_seq_len)
        feeds = {ITEM_IDS: ids, LENGTHS: lengths}
        expected = scorer.run([SCORES], feeds)[0]  # (B, N + 1)
        session = encoder.run([SESSION], feeds)[0]  # (B, d)
        if session.shape != (len(group), vectors.shape[1]):
            raise ExportParityError(f"{model.architecture}: encoder output shape "
                                    f"{session.shape}, expected {(len(group), vectors.shape[1])}")
        got = session @ vectors.T + bias  # (B, N + 1)
        diff = float(np.max(np.abs(got[:, 1:] - expected[:, 1:])))
        names = (model.architecture, "encoder @ item_vectors", "model.onnx")
        worst = max(worst, _compare(expected, got, lengths, names, atol,
                                    max(TIE_TOLERANCE, 2.0 * diff)))
        n_checked += len(group)
    return ParityReport(n_checked, worst, True)
