"""The real multilingual text encoder (the model file 'make' fetches from the pinned wheel)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest

from models.text.asset import DEFAULT_MODEL_PATH, TextModelError, verify_model
from models.text.encoder import DIMENSIONS, TextEncoder

PAIRS = [  # the same product in English and Chinese
    ("Digital pH meter with LCD display, 0.01 resolution", "数字pH计，液晶显示，分辨率0.01"),
    ("Nitrile disposable gloves, powder free, size M", "一次性丁腈手套，无粉，M码"),
    ("Cordless drill driver 18V with two batteries", "18V无绳电钻，配两块电池"),
]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder.load(DEFAULT_MODEL_PATH, device="cpu")


def test_the_installed_onnxruntime_is_the_gpu_build_alone() -> None:
    assert importlib.metadata.version("onnxruntime-gpu") == "1.31.1"
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("onnxruntime")  # the CPU package would shadow it


def test_an_english_and_a_chinese_title_of_one_product_are_close(encoder: TextEncoder) -> None:
    english = encoder.encode([en for en, _ in PAIRS])
    chinese = encoder.encode([zh for _, zh in PAIRS])
    similarity = english @ chinese.T
    assert english.shape == (3, DIMENSIONS) and english.dtype == np.float32
    assert np.allclose(np.linalg.norm(english, axis=1), 1.0, atol=1e-5)
    for row in range(3):
        others = np.delete(similarity[row], row)
        assert similarity[row, row] > 0.6 and similarity[row, row] > others.max() + 0.2


def test_odd_inputs_never_raise(encoder: TextEncoder) -> None:
    odd = ["", "   ", "x" * 100_000, "bad \ud800 surrogate", "a\x00b", "😀👍🏽\u202e"]
    vectors = encoder.encode(odd)
    assert vectors.shape == (len(odd), DIMENSIONS) and np.isfinite(vectors).all()
    assert not vectors[0].any() and not vectors[1].any()  # blank text: the zero vector
    assert encoder.encode([]).shape == (0, DIMENSIONS)


def test_batched_and_single_calls_agree(encoder: TextEncoder) -> None:
    texts = [en for en, _ in PAIRS] * 30  # more than one internal batch
    batched = encoder.encode(texts)
    single = np.vstack([encoder.encode([text]) for text in texts[:3]])
    assert np.all(np.sum(batched[:3] * single, axis=1) > 0.99)
    assert np.allclose(batched[:3], batched[3:6], atol=1e-6)


def test_a_damaged_model_file_is_refused(tmp_path: Path) -> None:
    damaged = tmp_path / "model.onnx"
    damaged.write_bytes(b"not the model")
    with pytest.raises(TextModelError, match="not the pinned file"):
        verify_model(damaged)
    with pytest.raises(TextModelError, match="does not exist"):
        TextEncoder.load(tmp_path / "missing.onnx")


def test_the_encoder_and_the_worker_never_import_torch() -> None:
    import subprocess
    import sys

    probe = ("import sys\n"
             "import streams.app, streams.runner\n"
             "from models.text.encoder import TextEncoder\n"
             "TextEncoder.load().encode(['pH meter'])\n"
             "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n"
             "assert 'onnx' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
