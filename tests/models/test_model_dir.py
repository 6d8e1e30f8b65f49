"""Model directories: complete on write (``model_dir_writer``), validated on read
(``model_dir``)."""

from __future__ import annotations

import json

import pytest
import torch

from models.errors import ModelDirectoryError
from models.model_dir import REQUIRED_META, has_model_file, read_model_dir
from models.model_dir_writer import write_metrics, write_model_dir
from models.neural import build_model
from models.onnx_contract import OPSET
from models.vocabulary import Vocabulary

N_ITEMS = 12


@pytest.fixture()
def model_dir(tmp_path):
    torch.manual_seed(0)
    model = build_model("gru4rec", N_ITEMS, dim=8, max_seq_len=4)
    vocab = Vocabulary(tuple(f"sku-{i}" for i in range(N_ITEMS)))
    return write_model_dir(
        tmp_path / "m", model, vocab, training_data_fingerprint="f" * 64, name="tiny",
        metrics={"hr@20": 0.5},
    )


def test_round_trip(model_dir) -> None:
    again = read_model_dir(model_dir.path)
    assert {p.name for p in model_dir.path.iterdir()} >= {
        "model.onnx", "vocab.json", "config.json", "meta.json", "metrics.json"}
    assert set(REQUIRED_META) <= set(again.meta)
    assert again.name == "tiny" and again.n_items == N_ITEMS and again.max_seq_len == 4
    assert again.meta["architecture"] == "gru4rec"
    assert again.meta["training_data_fingerprint"] == "f" * 64
    assert [i["name"] for i in again.meta["onnx"]["inputs"]] == ["item_ids", "lengths"]
    assert again.meta["onnx"]["opset"] == OPSET and again.meta["onnx"]["parity"]["cases"] > 0
    assert has_model_file(model_dir.path)
    assert again.config["dim"] == 8 and again.metrics == {"hr@20": 0.5}
    assert again.vocabulary.items[0] == "sku-0"
    write_metrics(model_dir.path, {"hr@20": 0.7})
    assert read_model_dir(model_dir.path).metrics == {"hr@20": 0.7}


def test_missing_file_is_named(model_dir) -> None:
    (model_dir.path / "meta.json").unlink()
    with pytest.raises(ModelDirectoryError, match="meta.json"):
        read_model_dir(model_dir.path)


def test_inconsistent_vocabulary_is_rejected(model_dir) -> None:
    (model_dir.path / "vocab.json").write_text(json.dumps({"items": ["a", "b"]}))
    with pytest.raises(ModelDirectoryError, match="vocab.json"):
        read_model_dir(model_dir.path)


def test_vocabulary_must_fit_the_model(tmp_path) -> None:
    model = build_model("gru4rec", N_ITEMS, dim=8, max_seq_len=4)
    with pytest.raises(ModelDirectoryError):
        write_model_dir(tmp_path, model, Vocabulary(("a",)), training_data_fingerprint="x")


def test_not_a_model_dir(tmp_path) -> None:
    with pytest.raises(ModelDirectoryError):
        read_model_dir(tmp_path / "nowhere")
