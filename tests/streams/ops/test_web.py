"""The ``/users/{id}`` document: what it shows of a stored record, and when it refuses."""

from __future__ import annotations

import orjson
import pytest

from schemas.events import Event, EventType
from streams.ops.web import user_view
from streams.state.batch import UserRecord
from streams.state.bounds import StateBounds, StateDecodeError
from streams.state.user_state import apply_events

T0 = 1_795_456_800_000


def record(last_recommendation: bytes | None) -> UserRecord:
    events = [Event("e1", EventType.VIEW, "alice", "i1", T0),
              Event("e2", EventType.PURCHASE, "alice", "i2", T0 + 1)]
    state = apply_events(None, events, StateBounds()).state
    assert state is not None
    return UserRecord(state, last_recommendation)


def test_the_view_shows_state_and_the_last_recommendation() -> None:
    last = {"user_id": "alice", "items": [{"item_id": "i3", "score": 0.5}]}
    view = user_view("alice", record(orjson.dumps(last)))
    assert view["user_id"] == "alice"
    assert [entry["item_id"] for entry in view["recent"]] == ["i1", "i2"]
    assert view["purchased"] == ["i2"]
    assert view["events_applied"] == 2
    assert view["last_recommendation"] == last


def test_no_recommendation_yet_is_null() -> None:
    assert user_view("alice", record(None))["last_recommendation"] is None


def test_a_last_recommendation_that_is_not_json_is_a_decode_error() -> None:
    with pytest.raises(StateDecodeError, match="not JSON"):
        user_view("alice", record(b"\xff{garbage"))


def test_the_exposition_answers_only_the_named_families() -> None:
    from prometheus_client import CollectorRegistry

    from streams.ops.metrics import create_metrics
    from streams.ops.web import exposition

    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    metrics.recommendations_emitted.inc(3)
    metrics.batch_size.observe(5)
    everything = exposition(registry).decode()
    picked = exposition(registry, ["streamrec_recommendations_emitted_total",
                                   "streamrec_batch_size_events_sum"]).decode()
    assert "streamrec_recommendations_emitted_total 3.0" in picked
    assert "streamrec_batch_size_events_sum 5.0" in picked
    assert "streamrec_freshness_seconds" in everything
    assert "streamrec_freshness_seconds" not in picked
    assert len(picked) < len(everything) / 10
