"""text-model bench: input parsing and the recall arithmetic (random vectors, no encoder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.text.bench import read_texts, retrieval


def test_reads_recbole_text_files_and_plain_lines(tmp_path: Path) -> None:
    recbole = tmp_path / "x.text"
    recbole.write_text("item_id:token\ttext:token_seq\nA1\tpH meter. Lab.\nB2\tGloves.\n")
    plain = tmp_path / "titles.txt"
    plain.write_text("pH meter\n\nGloves\n")
    assert read_texts(recbole, 10) == ["pH meter. Lab.", "Gloves."]
    assert read_texts(plain, 1) == ["pH meter"]


def test_exact_search_has_full_recall() -> None:
    vectors = np.random.default_rng(1).normal(size=(400, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact, hnsw = retrieval(vectors, queries=50)
    assert exact.recall_at_20 == 1.0
    assert 0.0 < hnsw.recall_at_20 <= 1.0 and exact.query_ms > 0
