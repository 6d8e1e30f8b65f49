"""Benchmark and event loading and validation splits, on generated files."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from models.data import (
    expand_prefixes,
    load_benchmark,
    load_event_sessions,
    split_validation,
)
from models.errors import (
    BenchmarkNotFoundError,
    InvalidBenchmarkError,
    InvalidInputError,
)


def write_benchmark(directory: Path, train: str, test: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train_sessions.txt").write_text(train)
    (directory / "test.tsv").write_text(test)
    return directory


# ------------------------------------------------------------------------- benchmarks
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


def test_expand_prefixes() -> None:
    prefixes, targets = expand_prefixes([[1, 2, 3], [4], [5, 6]])
    assert prefixes == [[1], [1, 2], [5]]
    assert targets.tolist() == [2, 3, 6]
    assert targets.dtype == np.int64


def test_split_validation_uses_the_last_sessions() -> None:
    sessions = [[1, 2], [2, 3], [3, 4], [1, 2], [2, 3], [3, 1], [4, 2], [1, 3], [9, 2, 3], [1]]
    train, prefixes, targets = split_validation(sessions, fraction=0.2)
    assert train == sessions[:8]
    # [9, 2, 3] loses the item unseen in training; [1] has no next item
    assert prefixes == [[2]] and targets.tolist() == [3]


def test_split_validation_sampling_is_seeded() -> None:
    sessions = [[i % 7 + 1, (i + 1) % 7 + 1, (i + 2) % 7 + 1] for i in range(100)]
    a = split_validation(sessions, 0.3, seed=1, max_cases=10)
    b = split_validation(sessions, 0.3, seed=1, max_cases=10)
    assert a[1] == b[1] and len(a[1]) == 10
    assert a[2].tolist() == b[2].tolist()


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_split_validation_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(InvalidInputError):
        split_validation([[1, 2]] * 10, fraction)


# ------------------------------------------------------------------------- event files
def event(eid: str, user: str, item: str, ts: object, **extra: object) -> str:
    return json.dumps(
        {"event_id": eid, "event_type": "view", "user_id": user, "item_id": item,
         "timestamp": ts, **extra}
    )


def test_event_sessions_split_on_gap_and_session_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = 1_700_000_000_000
    lines = [
        event("e1", "u1", "A", base),
        event("e2", "u1", "B", "2023-11-14T22:15:20Z"),  # base + 120 s, RFC 3339
        event("e3", "u2", "C", base + 60_000),
        event("e4", "u1", "C", "2023-11-14T23:16:20+01:00"),  # base + 180 s with offset
        event("e5", "u1", "D", base + 180_000 + 1_801_000),  # > 30 min gap: new session
        event("e6", "u2", "A", base + 70_000, session_id="s2"),  # session id change
        event("e2", "u1", "Z", base + 1),  # duplicate event id
        "not json",
        event("e7", "u3", "A", "2023-11-14T22:15:00"),  # no offset: not RFC 3339
        json.dumps({"event_id": "e8", "event_type": "hover", "user_id": "u", "item_id": "A",
                    "timestamp": base}),
        "",
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        corpus = load_event_sessions(path)
    assert "3 lines" in caplog.text
    assert corpus.n_invalid == 3 and corpus.n_duplicates == 1 and corpus.n_events == 6
    # sessions ordered by start time; vocabulary by first appearance in that order
    assert corpus.vocabulary.items == ("A", "B", "C", "D")
    assert corpus.sessions == [[1, 2, 3], [3], [1], [4]]
    assert corpus.session_starts_ms.tolist() == [
        base, base + 60_000, base + 70_000, base + 1_981_000
    ]
    assert corpus.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()


def test_event_corpus_as_benchmark_splits_by_time(tmp_path: Path) -> None:
    lines = []
    for s in range(10):
        for p in range(3):
            lines.append(event(f"{s}-{p}", f"u{s}", f"i{(s + p) % 5}", s * 10_000_000 + p))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines))
    bench = load_event_sessions(path).as_benchmark(test_fraction=0.2)
    assert len(bench.train_sessions) == 8
    assert len(bench.test_prefixes) == 4  # two sessions of 3 events -> 2 cases each
    assert bench.n_items == 5 and bench.vocabulary.items[0] == "i0"


def test_missing_event_file(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkNotFoundError):
        load_event_sessions(tmp_path / "nope.jsonl")
