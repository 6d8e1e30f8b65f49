"""Benchmark directories in the Diginetica (SR-GNN / GCE-GNN) format.

``train_sessions.txt``: one training session per line, space-separated item indices;
``test.tsv``: one test case per line, ``prefix<TAB>target``. Item ids are the indices
``1..n_items`` themselves (identity vocabulary). No item text, no validation cases.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from models.data.benchmark import Benchmark, parse_ids
from models.errors import BenchmarkNotFoundError, InvalidBenchmarkError

TRAIN_FILE = "train_sessions.txt"
TEST_FILE = "test.tsv"


def is_diginetica_dir(directory: Path) -> bool:
    """Whether ``directory`` holds this format's training file."""
    return (Path(directory) / TRAIN_FILE).is_file()


def load_diginetica(directory: Path) -> Benchmark:
    """Load ``train_sessions.txt`` and ``test.tsv`` from a benchmark directory.

    ``n_items`` is the largest item id in either file; the fingerprint is the sha256 of the
    training file's bytes. Blank lines are ignored.
    """
    directory = Path(directory)
    train_path, test_path = directory / TRAIN_FILE, directory / TEST_FILE
    for path in (train_path, test_path):
        if not path.is_file():
            raise BenchmarkNotFoundError(
                f"{path} not found: a benchmark directory holds {TRAIN_FILE} and {TEST_FILE}"
            )
    raw = train_path.read_bytes()
    fingerprint = hashlib.sha256(raw).hexdigest()
    train: list[list[int]] = []
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        ids = parse_ids(line, f"{train_path}:{lineno}")
        if ids:
            train.append(ids)
    prefixes: list[list[int]] = []
    targets: list[int] = []
    for lineno, line in enumerate(test_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{test_path}:{lineno}"
        prefix_text, sep, target_text = line.partition("\t")
        target = parse_ids(target_text, where)
        prefix = parse_ids(prefix_text, where)
        if not sep or len(target) != 1 or not prefix:
            raise InvalidBenchmarkError(f"{where}: expected 'prefix<TAB>target'")
        prefixes.append(prefix)
        targets.append(target[0])
    if not train or not prefixes:
        raise InvalidBenchmarkError(f"{directory}: training or test file has no data")
    n_items = max(
        max(max(s) for s in train), max(max(p) for p in prefixes), max(targets)
    )
    return Benchmark(
        train_sessions=train,
        test_prefixes=prefixes,
        test_targets=np.asarray(targets, dtype=np.int64),
        n_items=n_items,
        fingerprint=fingerprint,
    )
