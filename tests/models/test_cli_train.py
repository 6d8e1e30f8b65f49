"""``streamrec train`` with item text and the cold-item protocol, end to end on tiny files:
a RecBole directory with text (its vectors pre-cached, so no encoder runs), and an event
file without text."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from models.cli_common import EXIT_ERROR
from models.cli_evaluate import add_evaluate_parser, run_evaluate
from models.cli_train import add_train_parser, run_train
from models.data import load_benchmark
from models.model_dir import read_model_dir
from models.text.item_vectors import texts_key
from tests.models.conftest import write_recbole_dataset

TINY = ["--epochs", "2", "--no-progress", "--batch-size", "16", "--set", "dim=8",
        "--set", "n_heads=2", "--set", "max_seq_len=6", "--set", "neighbors=2"]


def parse(command: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_train_parser(sub)
    add_evaluate_parser(sub)
    return parser.parse_args([command, *argv])


@pytest.fixture(scope="module")
def text_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 20-item RecBole directory and a text cache holding its (random) item vectors."""
    root = tmp_path_factory.mktemp("text-data")
    rng = np.random.default_rng(0)
    sequences = {str(u): rng.integers(0, 20, size=int(rng.integers(4, 9))).tolist()
                 for u in range(60)}
    directory = write_recbole_dataset(root / "sci", sequences, n_items=20)
    texts = load_benchmark(directory).item_texts
    assert texts is not None
    vectors = rng.normal(size=(21, 512)).astype(np.float32)
    vectors[0] = 0.0
    cache = root / "cache"
    cache.mkdir()
    np.save(cache / f"{texts_key(texts)}.npy", vectors)
    return directory, cache


@pytest.mark.parametrize("protocol", ["standard", "cold-items"])
def test_text_model_trains_exports_and_evaluates(
    text_data: tuple[Path, Path], tmp_path: Path, protocol: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory, cache = text_data
    data = ["--data-dir", str(directory), "--protocol", protocol, "--cold-fraction", "0.2"]
    out = tmp_path / "model"
    argv = [*data, "--text", "--text-cache", str(cache), "--text-model", "/nonexistent",
            "--out", str(out), *TINY]
    assert run_train(parse("train", argv)) == 0
    model_dir = read_model_dir(out)
    assert model_dir.meta["architecture"] == "sessattn_text"
    assert model_dir.meta["training"]["item_text"] is True
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"].startswith(protocol) and metrics["cases"] > 0  # validation
    capsys.readouterr()
    assert run_evaluate(parse("evaluate", [*data, "--model", str(out), "--json"])) == 0
    assert json.loads(capsys.readouterr().out)["cases"] == metrics["test"]["cases"]


def test_text_model_on_events_without_text_trains_as_sessattn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = []
    rng = np.random.default_rng(2)
    for user in range(40):
        first = int(rng.integers(0, 15))
        for step in range(int(rng.integers(2, 6))):
            lines.append(json.dumps({
                "event_id": f"e-{user}-{step}", "event_type": "view", "user_id": f"u{user}",
                "item_id": f"sku-{first + step}", "timestamp": user * 10_000_000 + step,
            }))
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    out = tmp_path / "model"
    argv = ["--events", str(events), "--model", "sessattn_text", "--out", str(out), *TINY]
    assert run_train(parse("train", argv)) == 0
    assert "exactly SessAttn" in caplog.text
    assert read_model_dir(out).meta["training"]["item_text"] is False


def test_text_flag_refuses_an_id_only_model(tmp_path: Path) -> None:
    argv = ["--events", str(tmp_path / "x.jsonl"), "--text", "--model", "sasrec",
            "--out", str(tmp_path / "m")]
    assert run_train(parse("train", argv)) == EXIT_ERROR
