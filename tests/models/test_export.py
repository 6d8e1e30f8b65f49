"""ONNX export: dynamic axes, parity check, and a loud failure when parity breaks."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from models.errors import ExportParityError
from models.export import check_parity, export_onnx
from models.neural import build_model
from models.onnx_contract import INPUTS, OPSET, pad_batch

N_ITEMS = 25


def tiny(seed: int):
    torch.manual_seed(seed)
    return build_model("sessattn", N_ITEMS, dim=8, n_heads=2, max_seq_len=5).eval()


def test_export_has_dynamic_batch_and_sequence_axes(tmp_path) -> None:
    model = tiny(0)
    export_onnx(model, tmp_path / "m.onnx", parity_cases=8)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [i["name"] for i in INPUTS]
    opsets = {o.domain: o.version for o in onnx.load(str(tmp_path / "m.onnx")).opset_import}
    assert opsets[""] == OPSET
    for rows in ([[1]], [[1, 2, 3, 4, 5]] * 7):
        ids, lengths = pad_batch(rows, 5)
        scores = session.run(["scores"], {"item_ids": ids, "lengths": lengths})[0]
        with torch.no_grad():
            expected = model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
        assert scores.shape == (len(rows), N_ITEMS + 1)
        np.testing.assert_allclose(scores[:, 1:], expected[:, 1:], atol=1e-4)


def test_parity_failure_is_loud(tmp_path) -> None:
    export_onnx(tiny(0), tmp_path / "m.onnx", parity_cases=8)
    with pytest.raises(ExportParityError):
        check_parity(tiny(1), tmp_path / "m.onnx", cases=8)


def test_failed_export_leaves_no_file(tmp_path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise ExportParityError("simulated")

    monkeypatch.setattr("models.export.check_parity", broken)
    with pytest.raises(ExportParityError):
        export_onnx(tiny(0), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
