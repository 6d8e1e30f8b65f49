"""``streamrec export-events`` against the real broker: the window by record and event time,
invalid records skipped and counted, duplicates once, sorted lines that ``streamrec train
--events`` reads back."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

from devtools.broker import EmbeddedBroker
from models.data.events import load_event_sessions
from schemas.events import Event, decode_event
from schemas.feedback import Feedback, decode_feedback, encode_feedback
from streams.kafka.clients import librdkafka_config
from streams.kafka.topics import create_topics
from streams.lifecycle.export import (
    InvalidDurationError,
    TopicRecord,
    parse_duration,
    select_events,
    select_feedback,
)
from streams.lifecycle.export_cli import add_export_events_arguments, run_export_events
from streams.settings import Settings
from tests.streams.experiments.support import attributed, served
from tests.support import REPO, isolated_settings

HOUR = 3_600_000
DAY = 24 * HOUR
NOW = int(time.time() * 1000)


def event(event_id: str, event_type: str, at_ms: int, user: str = "u1", item: str = "i1",
          **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"event_id": event_id, "event_type": event_type, "user_id": user,
                            "timestamp": at_ms, **extra}
    if event_type == "search":
        data["properties"] = {"query": "red shoes"}
    else:
        data["item_id"] = item
    return data


def send(settings: Settings, messages: Iterable[tuple[str, bytes | None, int]]) -> None:
    """(topic, value, record timestamp ms), keyed u1, delivered."""
    from confluent_kafka import Producer

    producer = Producer(librdkafka_config(settings, **{"linger.ms": 5}))
    for topic, value, stamp in messages:
        producer.produce(topic, key=b"u1", value=value, timestamp=stamp)
    assert producer.flush(30) == 0


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="streamrec export-events")
    add_export_events_arguments(parser)
    return parser.parse_args(list(argv))


# The stream, by record time and event time (now = NOW):
IN_WINDOW = [
    ("views", event("v1", "view", NOW - 5 * HOUR, item="i1")),
    ("clicks", event("c1", "click", NOW - 4 * HOUR, item="i2")),
    ("clicks", event("a1", "add_to_cart", NOW - 3 * HOUR, item="i2")),
    ("purchases", event("p1", "purchase", NOW - 2 * HOUR, item="i2",
                        properties={"price": 9.5, "quantity": 2})),
    ("searches", event("s1", "search", NOW - 90 * 60_000)),
    ("views", event("v2", "view", NOW - 10 * HOUR, user="u2", item="i3")),  # sent late
    ("views", event("v3", "view", NOW - 10 * HOUR + 60_000, user="u2", item="i1")),
]
INVALID = [
    ("views", b"{not json"),
    ("purchases", orjson.dumps(event("x1", "view", NOW - HOUR))),  # wrong topic
    ("views", orjson.dumps({"event_type": "view", "user_id": "u1", "item_id": "i1",
                            "timestamp": NOW - HOUR})),  # no event_id
]


@pytest.fixture(scope="module")
def stream(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = isolated_settings(broker.url, tmp_path_factory.mktemp("export"))
    create_topics(settings)
    topic = {"views": settings.topic_views, "clicks": settings.topic_clicks,
             "purchases": settings.topic_purchases, "searches": settings.topic_searches}
    messages: list[tuple[str, bytes | None, int]] = []
    for name, data in IN_WINDOW:  # recorded when they happened (v2 and v3: an hour later)
        late = HOUR if data["event_id"] in {"v2", "v3"} else 0
        messages.append((topic[name], orjson.dumps(data), data["timestamp"] + late))
    for name, value in INVALID:
        messages.append((topic[name], value, NOW - HOUR))
    messages += [
        (topic["views"], orjson.dumps(IN_WINDOW[0][1]), NOW - 30 * 60_000),  # a duplicate
        # recorded 3 days ago: before the window, never read
        (topic["views"], orjson.dumps(event("old1", "view", NOW - 3 * DAY)), NOW - 3 * DAY),
        # recorded now, but it happened 3 days ago: outside the window by event time
        (topic["clicks"], orjson.dumps(event("old2", "click", NOW - 3 * DAY)), NOW - HOUR),
    ]
    feedback = [
        served("r1", "u1", "A", at_ms=NOW - 3 * HOUR),
        attributed("r1", "u1", "A", "i2", "click", at_ms=NOW - 2 * HOUR),
        served("r0", "u1", "A", at_ms=NOW - 3 * DAY),
    ]
    for record in feedback:
        messages.append((settings.topic_feedback, encode_feedback(record)[1], record.time_ms))
    messages.append((settings.topic_feedback, encode_feedback(feedback[1])[1], NOW - HOUR))
    messages.append((settings.topic_feedback, b"garbage", NOW - HOUR))
    send(settings, messages)
    return settings


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_export_writes_the_window_sorted_and_counts_the_rest(
        stream: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, feedback_out = tmp_path / "out" / "events.jsonl", tmp_path / "feedback.jsonl"
    args = parse("--since", "1d", "--out", str(out), "--feedback", str(feedback_out))
    assert run_export_events(args, settings=stream) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{out}\n"
    assert "exported 7 events" in captured.err
    assert "skipped 3 invalid" in captured.err and "1 duplicates" in captured.err
    assert "1 older than the window" in captured.err

    written = lines(out)
    assert [e["event_id"] for e in written] == ["v2", "v3", "v1", "c1", "a1", "p1", "s1"]
    assert [e["timestamp"] for e in written] == sorted(e["timestamp"] for e in written)
    expected = {data["event_id"]: data for _, data in IN_WINDOW}
    for line in written:  # the event schema, exactly as produced (canonical form)
        decoded = decode_event(orjson.dumps(line), "any", now_ms=NOW)
        assert isinstance(decoded, Event)
        original = decode_event(orjson.dumps(expected[line["event_id"]]), "any", now_ms=NOW)
        assert decoded == original

    records = [decode_feedback(orjson.dumps(r)) for r in lines(feedback_out)]
    assert [(r.recommendation_id, type(r).__name__) for r in records] == [
        ("r1", "Served"), ("r1", "Attribution")]


def test_the_export_is_what_train_reads(stream: Settings, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    assert run_export_events(parse("--since", "1d", "--out", str(out)), settings=stream) == 0
    corpus = load_event_sessions(out)
    assert corpus.n_events == 6  # every event but the search (no item: train skips it)
    assert corpus.n_invalid == 0 and corpus.n_searches == 1 and corpus.n_duplicates == 0
    assert sorted(corpus.vocabulary.items) == ["i1", "i2", "i3"]
    assert sorted(map(len, corpus.sessions)) == [1, 1, 1, 1, 2]  # u1: hours apart


def test_a_short_window_leaves_older_events_out(stream: Settings, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "events.jsonl"
    assert run_export_events(parse("--since", "150m", "--out", str(out)), settings=stream) == 0
    assert [e["event_id"] for e in lines(out)] == ["p1", "s1"]
    capsys.readouterr()


def test_export_does_not_import_torch() -> None:
    script = ("import sys, streams.lifecycle.export_cli, streams.experiments.report_cli, "
              "streams.lifecycle.retrain_cli; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("24h", 86400), ("7d", 604800),
                                               ("45s", 45), ("2w", 1209600)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "0d", "-1d", "1.5h", "7 days", "7D"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(InvalidDurationError, match="e.g. 30m, 24h, 7d"):
        parse_duration(text)
    with pytest.raises(SystemExit):
        parse("--since", text, "--out", "x")


def record(topic: str, value: bytes | None, offset: int = 0) -> TopicRecord:
    return TopicRecord(topic, 0, offset, None, b"u1", value)


def test_select_events_uses_the_workers_codec_and_limits(stream: Settings) -> None:
    limits = stream.decode_limits()
    future = orjson.dumps(event("f1", "view", NOW + DAY))  # beyond the clock skew allowed
    selection = select_events([record(stream.topic_views, future),
                               record(stream.topic_views, None),
                               record(stream.topic_views, orjson.dumps(event("ok", "view",
                                                                             NOW)))],
                              limits, NOW - DAY, NOW)
    assert [e.event_id for e in selection.events] == ["ok"]
    assert dict(selection.rejected) == {"timestamp_out_of_range": 1, "empty_payload": 1}
    assert selection.skipped == 2


def test_select_feedback_dedupes_and_windows() -> None:
    records: list[Feedback] = [served("r1", "u1", "A", at_ms=NOW),
                               served("r1", "u1", "A", at_ms=NOW),
                               served("r2", "u1", "A", at_ms=NOW - DAY)]
    raw = [record("feedback", encode_feedback(r)[1], i) for i, r in enumerate(records)]
    selection = select_feedback([*raw, record("feedback", b"{}")], NOW - HOUR)
    assert [r.recommendation_id for r in selection.records] == ["r1"]
    assert (selection.duplicates, selection.outside_window, selection.skipped) == (1, 1, 1)
