"""Item text vectors: embedded once, cached by encoder and text hash, zero rows where there
is no text. A fake encoder stands in for the real one (no model file needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.text.item_vectors import item_vectors, texts_key


class FakeEncoder:
    name = "fake"
    dimensions = 4

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), 4), np.float32)
        for row, text in enumerate(texts):
            if text.strip():
                out[row, len(text) % 4] = 1.0
        return out


def test_embeds_once_then_reads_the_cache(tmp_path: Path) -> None:
    texts = ["Digital pH meter. Lab. Apera.", "", "Gloves."]
    encoder = FakeEncoder()
    first = item_vectors(texts, cache_dir=tmp_path, encoder=encoder)
    assert first.shape == (4, 4) and first.dtype == np.float32
    assert not first[0].any() and not first[2].any()  # padding, and the item without text
    assert encoder.calls == [texts]
    again = item_vectors(texts, cache_dir=tmp_path, encoder=encoder)
    np.testing.assert_array_equal(again, first)
    assert len(encoder.calls) == 1  # read from disk
    assert (tmp_path / f"{texts_key(texts, 'fake')}.npy").is_file()
    item_vectors([*texts, "new item"], cache_dir=tmp_path, encoder=encoder)
    assert len(encoder.calls) == 2  # other texts, other key
    assert not list(tmp_path.glob("*.partial*"))


def test_a_cache_file_of_the_wrong_shape_is_replaced(tmp_path: Path) -> None:
    texts = ["a", "b"]
    np.save(tmp_path / f"{texts_key(texts, 'fake')}.npy", np.zeros((7, 4), np.float32))
    encoder = FakeEncoder()
    assert item_vectors(texts, cache_dir=tmp_path, encoder=encoder).shape == (3, 4)
    assert len(encoder.calls) == 1


def test_key_separates_texts_and_encoders() -> None:
    assert texts_key(["ab", "c"]) != texts_key(["a", "bc"])
    assert texts_key(["a"], "one") != texts_key(["a"], "two")
