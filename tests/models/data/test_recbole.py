"""The RecBole leave-one-out loader (``amazon_scientific/``'s layout), on tiny generated files;
nothing here reads the real dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.data import load_benchmark, load_recbole
from models.errors import BenchmarkNotFoundError, InvalidBenchmarkError
from tests.models.conftest import RECBOLE_HEADER as HEADER
from tests.models.conftest import write_recbole_dataset as write_dataset


def test_users_become_sessions_rows_become_cases(tmp_path: Path) -> None:
    bench = load_recbole(write_dataset(tmp_path, {"0": [0, 1, 2, 3, 4, 1], "1": [4, 0, 2, 3]}))
    assert bench.n_items == 5 and bench.item_ids == ("I00", "I01", "I02", "I03", "I04")
    assert bench.train_sessions == [[1, 2, 3, 4], [5, 1]]  # indices shifted to 1..n
    assert bench.valid_prefixes == [[1, 2, 3, 4], [5, 1]]
    assert bench.valid_targets is not None and bench.valid_targets.tolist() == [5, 3]
    assert bench.test_prefixes == [[1, 2, 3, 4, 5], [5, 1, 3]]
    assert bench.test_targets.tolist() == [2, 4]
    assert bench.item_texts is not None
    assert bench.item_texts[0] == "Title I00. Lab > Tools. Brand." and bench.item_texts[2] == ""
    assert bench.vocabulary.encode(["I04"]) == [5]


def test_load_benchmark_recognises_the_layout(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path, {"0": [0, 1, 2, 3]})
    assert load_benchmark(directory).train_sessions == [[1, 2]]


def test_long_sequences_are_rebuilt_past_the_history_window(tmp_path: Path) -> None:
    """Rows hold the last 50 items: a 60-item training sequence is still rebuilt whole."""
    sequence = [(i * 7) % 5 for i in range(62)]
    bench = load_recbole(write_dataset(tmp_path, {"0": sequence}))
    assert bench.train_sessions == [[i + 1 for i in sequence[:-2]]]
    assert len(bench.test_prefixes[0]) == 50


def test_fingerprint_changes_with_the_training_rows(tmp_path: Path) -> None:
    a = load_recbole(write_dataset(tmp_path / "a", {"0": [0, 1, 2, 3]}))
    b = load_recbole(write_dataset(tmp_path / "b", {"0": [0, 4, 2, 3]}))
    assert a.fingerprint != b.fingerprint


def test_inconsistent_rows_name_file_and_line(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path, {"0": [0, 1, 2, 3, 4]})
    path = directory / "Tiny.train.inter"
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = "0\t3 3\t2\n"  # the longest row no longer continues the shorter ones
    path.write_text("".join(lines))
    with pytest.raises(InvalidBenchmarkError, match="Tiny.train.inter:2"):
        load_recbole(directory)


def test_item_index_outside_the_catalogue(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path, {"0": [0, 1, 2, 3]})
    (directory / "Tiny.test.inter").write_text(HEADER + "0\t0 1 2\t9\n")
    with pytest.raises(InvalidBenchmarkError, match="Tiny.test.inter:2"):
        load_recbole(directory)


def test_missing_file_is_named(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path, {"0": [0, 1, 2, 3]})
    (directory / "Tiny.valid.inter").unlink()
    with pytest.raises(BenchmarkNotFoundError, match="Tiny.valid.inter"):
        load_recbole(directory)
    with pytest.raises(BenchmarkNotFoundError):
        load_benchmark(tmp_path / "nowhere")
