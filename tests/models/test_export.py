"""ONNX export: dynamic axes, parity check, and a loud failure when parity breaks; the
retrieval pair (encoder graph and item vectors) and its parity with the scores graph."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from models.errors import ExportParityError
from models.export import check_encoder_parity, check_parity, export_encoder, export_onnx
from models.neural import build_model
from models.onnx_contract import (
    ENCODER_FILE,
    INPUTS,
    ITEM_BIAS_FILE,
    ITEM_VECTORS_FILE,
    OPSET,
    SESSION,
    pad_batch,
)

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


# ------------------------------------------------------------------ the retrieval pair
def untrained(architecture: str, with_text: bool = False):
    """A seeded untrained model of ``architecture`` (tiny config), with text if asked."""
    from models.neural import TINY_CONFIGS
    from tests.models.conftest import tiny_text_vectors

    torch.manual_seed(0)
    model = build_model(architecture, N_ITEMS, **TINY_CONFIGS[architecture]).eval()
    if with_text:
        model.attach_text(tiny_text_vectors(N_ITEMS))  # type: ignore[operator]
    return model


@pytest.mark.parametrize(
    ("architecture", "with_text"),
    [("sessattn", False), ("gru4rec", False), ("sasrec", False), ("sessattn_text", True)],
)
def test_the_encoder_and_item_vectors_reproduce_the_scores(
    tmp_path, architecture: str, with_text: bool
) -> None:
    """``session @ item_vectors.T + item_bias`` is the scores graph's output, for every
    architecture ``streamrec train`` produces (cosine with temperature or raw dot products)."""
    model = untrained(architecture, with_text)
    export_onnx(model, tmp_path / "model.onnx", parity_cases=8)
    written = export_encoder(model, tmp_path, tmp_path / "model.onnx", parity_cases=8)
    assert written.parity.top20_identical and written.parity.max_abs_diff <= 1e-4
    assert not written.has_bias and not (tmp_path / ITEM_BIAS_FILE).exists()  # pad only at 0
    vectors = np.load(tmp_path / ITEM_VECTORS_FILE)
    assert vectors.dtype == np.float32 and vectors.shape == (N_ITEMS + 1, written.dim)
    encoder = ort.InferenceSession(str(tmp_path / ENCODER_FILE),
                                   providers=["CPUExecutionProvider"])
    assert [o.name for o in encoder.get_outputs()] == [SESSION]
    ids, lengths = pad_batch([[1, 2, 3], [7], [4, 4, 9, 10, 11, 12, 13, 14]], 8)
    session = encoder.run([SESSION], {"item_ids": ids, "lengths": lengths})[0]
    with torch.no_grad():
        expected = model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
    np.testing.assert_allclose((session @ vectors.T)[:, 1:], expected[:, 1:], atol=2e-4)


def test_a_score_offset_is_exported_as_item_bias(tmp_path) -> None:
    model = untrained("gru4rec")
    with torch.no_grad():
        model.pad_scores[1:] = torch.linspace(-1.0, 1.0, N_ITEMS)
    export_onnx(model, tmp_path / "model.onnx", parity_cases=8)
    written = export_encoder(model, tmp_path, tmp_path / "model.onnx", parity_cases=8)
    assert written.has_bias
    np.testing.assert_allclose(np.load(tmp_path / ITEM_BIAS_FILE)[1:],
                               np.linspace(-1.0, 1.0, N_ITEMS), atol=1e-6)


def test_an_encoder_of_another_model_is_refused_and_leaves_nothing(tmp_path) -> None:
    export_onnx(tiny(0), tmp_path / "model.onnx", parity_cases=8)
    with pytest.raises(ExportParityError, match="encoder"):
        export_encoder(tiny(1), tmp_path, tmp_path / "model.onnx", parity_cases=8)
    assert not {ENCODER_FILE, ITEM_VECTORS_FILE, ITEM_BIAS_FILE} & {
        p.name for p in tmp_path.iterdir()}


def test_tampered_item_vectors_fail_the_encoder_parity_check(tmp_path) -> None:
    model = tiny(0)
    export_onnx(model, tmp_path / "model.onnx", parity_cases=8)
    export_encoder(model, tmp_path, tmp_path / "model.onnx", parity_cases=8)
    vectors = np.load(tmp_path / ITEM_VECTORS_FILE)
    vectors[3] *= 1.01
    np.save(tmp_path / ITEM_VECTORS_FILE, vectors)
    with pytest.raises(ExportParityError, match="difference"):
        check_encoder_parity(model, tmp_path, tmp_path / "model.onnx", cases=8)


def test_write_model_dir_records_the_encoder_and_add_encoder_upgrades_old_dirs(
    tmp_path,
) -> None:
    from models.model_dir import read_model_dir
    from models.model_dir_writer import add_encoder, write_model_dir
    from models.vocabulary import Vocabulary

    model = tiny(0)
    directory = write_model_dir(tmp_path / "m", model, Vocabulary.identity(N_ITEMS),
                                training_data_fingerprint="f" * 64)
    section = directory.encoder_meta
    assert directory.has_encoder and section is not None
    assert section["file"] == ENCODER_FILE and section["outputs"][0]["name"] == SESSION
    assert section["parity"]["top20_identical"] and section["parity"]["cases"] > 0
    vectors, bias = directory.item_vectors()
    assert vectors.shape == (N_ITEMS + 1, 8) and bias is None
    # an old directory: no pair, no meta section; add_encoder restores both
    for name in (ENCODER_FILE, ITEM_VECTORS_FILE):
        (tmp_path / "m" / name).unlink()
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    del meta["onnx"]["encoder"]
    (tmp_path / "m" / "meta.json").write_text(json.dumps(meta))
    assert not read_model_dir(tmp_path / "m").has_encoder
    assert add_encoder(tmp_path / "m", model).has_encoder
    with pytest.raises(ExportParityError):
        add_encoder(tmp_path / "m", tiny(1))  # not the model the directory was exported from
