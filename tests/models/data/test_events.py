"""JSON-lines event files grouped into sessions and split by time, on generated files."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from models.data import load_event_sessions
from models.errors import BenchmarkNotFoundError


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


def test_searches_are_counted_apart_not_as_invalid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = 1_700_000_000_000
    search = {"event_id": "s1", "event_type": "search", "user_id": "u1", "timestamp": base,
              "properties": {"query": "red shoes"}}
    broken_search = {"event_type": "search", "user_id": "u1", "timestamp": base}  # no id
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([event("e1", "u1", "A", base + 1), json.dumps(search),
                               json.dumps(broken_search), event("e2", "u1", "B", base + 2)])
                    + "\n")
    with caplog.at_level(logging.INFO):
        corpus = load_event_sessions(path)
    assert corpus.n_searches == 1 and corpus.n_invalid == 1 and corpus.n_events == 2
    assert "1 searches skipped" in caplog.text
    assert corpus.sessions == [[1, 2]]
