"""The Diginetica-format benchmark directory loader, on generated files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from models.data import load_benchmark
from models.errors import BenchmarkNotFoundError, InvalidBenchmarkError


def write_benchmark(directory: Path, train: str, test: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train_sessions.txt").write_text(train)
    (directory / "test.tsv").write_text(test)
    return directory


def test_load_benchmark(tmp_path: Path) -> None:
    train = "1 2 3\n4 5\n\n2 2\n"
    bench = load_benchmark(write_benchmark(tmp_path, train, "1 2\t3\n4\t7\n"))
    assert bench.train_sessions == [[1, 2, 3], [4, 5], [2, 2]]
    assert bench.test_prefixes == [[1, 2], [4]]
    assert bench.test_targets.tolist() == [3, 7]
    assert bench.n_items == 7  # the largest id in train or test
    assert bench.fingerprint == hashlib.sha256(train.encode()).hexdigest()
    assert bench.vocabulary.encode(["7", "8"]) == [7, 0]


def test_missing_benchmark_file_names_it(tmp_path: Path) -> None:
    (tmp_path / "train_sessions.txt").write_text("1 2\n")
    with pytest.raises(BenchmarkNotFoundError, match="test.tsv"):
        load_benchmark(tmp_path)


@pytest.mark.parametrize(
    ("train", "test", "where"),
    [
        ("1 x\n", "1\t2\n", "train_sessions.txt:1"),
        ("1 2\n0 3\n", "1\t2\n", "train_sessions.txt:2"),
        ("1 2\n", "1 2 3\n", "test.tsv:1"),
        ("1 2\n", "1\t2 3\n", "test.tsv:1"),
        ("1 2\n", "\t2\n", "test.tsv:1"),
    ],
)
def test_malformed_benchmark_names_file_and_line(
    tmp_path: Path, train: str, test: str, where: str
) -> None:
    with pytest.raises(InvalidBenchmarkError, match=where):
        load_benchmark(write_benchmark(tmp_path, train, test))
