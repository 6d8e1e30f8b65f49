"""End to end through a real broker: an independent client in, recommendations out.

The worker runs as a real subprocess (``streamrec worker``) against the session's Tansu
broker; events are published with confluent-kafka, and outputs are read back with it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from devtools.broker import EmbeddedBroker
from schemas.contract import load_schema
from streams.kafka.topics import create_topics
from streams.settings import Settings
from tests.support import (
    FAST_GROUP,
    TopicReader,
    WorkerProcess,
    isolated_settings,
    metric_values,
    offline_states,
    produce,
    state_matches,
    wait_for,
)

USERS = 60
EVENTS_PER_USER = 6
TYPES = ("view", "click", "add_to_cart", "purchase")

MALFORMED: list[tuple[str, bytes | None, str]] = [
    # (topic suffix, value, expected reason)
    ("views", b"{not json", "invalid_json"),
    ("views", b"\xff\xfe\x00garbage", "not_utf8"),
    ("clicks", b"", "empty_payload"),
    ("clicks", b'{"event_type": "click"}', "missing_field"),
    ("views", b'{"event_id": "bad-type", "event_type": "teleport", "user_id": "u",'
              b' "item_id": "i", "timestamp": 1767225600000}', "unknown_event_type"),
    ("purchases", b'{"event_id": "wrong-topic", "event_type": "view", "user_id": "u",'
                  b' "item_id": "i", "timestamp": 1767225600000}', "wrong_topic"),
    ("views", b"[1, 2, 3]", "not_an_object"),
]


def make_events(now_ms: int) -> list[dict[str, Any]]:
    events = []
    for u in range(USERS):
        for n in range(EVENTS_PER_USER):
            events.append({
                "event_id": f"it-{u}-{n}",
                "event_type": TYPES[(u + n) % len(TYPES)],
                "user_id": f"it-user-{u}",
                "item_id": f"item-{(u * 7 + n) % 150:05d}",
                # user 0's newest event is sent first: the trigger must follow event time
                "timestamp": now_ms - 60_000 + (EVENTS_PER_USER - n if u == 0 else n) * 1000,
                "session_id": f"it-session-{u}",
            })
    return events


@pytest.fixture
def settings(request: pytest.FixtureRequest, broker: EmbeddedBroker, tmp_path: Path,
             tiny_model_dir: Path) -> Settings:
    """The default settings (direct path on), or with ``skip_rekey_hop`` as parametrized."""
    skip_rekey_hop = getattr(request, "param", True)
    settings = isolated_settings(broker.url, tmp_path, model_dir=tiny_model_dir,
                                 skip_rekey_hop=skip_rekey_hop, **FAST_GROUP)
    create_topics(settings)
    return settings


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize("settings", [True, False], ids=["default", "hop-only"],
                         indirect=True)
def test_events_in_recommendations_out(settings: Settings, worker: WorkerProcess) -> None:
    now_ms = int(time.time() * 1000)
    events = make_events(now_ms)
    messages: list[tuple[str, bytes | None, bytes | None]] = [
        (settings.topic_for(e["event_type"]), e["event_id"].encode(), orjson.dumps(e))
        for e in events
    ]
    prefix = settings.topic_views.rsplit(".", 1)[0]
    for suffix, value, _reason in MALFORMED:
        messages.append((f"{prefix}.{suffix}", b"bad-key", value))
    produce(settings, messages)

    reader = TopicReader(settings, [settings.topic_recommendations, settings.topic_dead_letter])
    try:
        def complete() -> bool:
            reader.poll()
            latest = latest_by_user(reader.values(settings.topic_recommendations))
            dead = reader.values(settings.topic_dead_letter)
            return len(latest) == USERS and len(dead) >= len(MALFORMED) and all(
                rec["trigger"]["event_id"] == newest_event_id(events, user)
                for user, rec in latest.items()
            )

        wait_for(complete, 60, "a recommendation reflecting every user's newest event")
        recommendations = reader.values(settings.topic_recommendations)
        dead_letters = reader.values(settings.topic_dead_letter)
    finally:
        reader.close()

    schema = load_schema("recommendation")
    for rec in recommendations:
        jsonschema.validate(rec, schema)
    keys = {m.key() for m in reader.messages if m.topic() == settings.topic_recommendations}
    assert keys == {f"it-user-{u}".encode() for u in range(USERS)}
    latest = latest_by_user(recommendations)
    assert all(rec["items"] for rec in latest.values())
    assert {rec["model"]["name"] for rec in latest.values()} != {"trending"}
    assert sorted(d["reason"] for d in dead_letters) == sorted(r for *_x, r in MALFORMED)
    for dead in dead_letters:
        assert dead["source"]["topic"].startswith(prefix)
        assert dead["source"]["offset"] >= 0

    # The worker kept going and answers its HTTP endpoints.
    assert worker.process.poll() is None
    status, user = worker.get("/users/it-user-1")
    assert status == 200
    assert sum(user["counts"].values()) == EVENTS_PER_USER
    assert user["last_recommendation"]["trigger"]["event_id"] == newest_event_id(
        events, "it-user-1")
    assert worker.get("/users/nobody-at-all")[0] == 404
    metrics_text = fetch_text(worker.base_url + "/metrics")
    assert 'streamrec_dead_letters_total{reason="invalid_json"} 1.0' in metrics_text
    assert "streamrec_recommendations_emitted_total" in metrics_text
    picked = fetch_text(worker.base_url
                        + "/metrics?name[]=streamrec_recommendations_emitted_total")
    assert "streamrec_recommendations_emitted_total" in picked
    assert "streamrec_dead_letters_total" not in picked
    def every_event_routed() -> dict[str, float]:
        routed = metric_values(worker.base_url, "streamrec_events_routed_total", "path")
        return routed if sum(routed.values()) == len(events) else {}

    routed = wait_for(every_event_routed, 30, "every valid event routed to the state")
    if not settings.skip_rekey_hop:
        assert routed.get("direct", 0) == 0


def test_user_keyed_events_skip_the_rekey_hop_with_the_same_state_and_recommendations(
    settings: Settings, worker: WorkerProcess
) -> None:
    """A mixed stream: half the users' events keyed by user id with Kafka's partitioner
    (they arrive in the partition that owns their user: the direct path), the others keyed
    by event id (the hop, unless they land in their user's partition by chance); some
    user-keyed events sent again keyed by event id, so one event reaches the state both
    ways. Every user ends with the state the pure update functions give (each event
    applied once) and a recommendation for their newest event, as through the hop alone."""
    now_ms = int(time.time() * 1000)
    events = [{**e, "event_id": f"dp-{e['event_id']}", "user_id": f"dp-{e['user_id']}"}
              for e in make_events(now_ms)]
    by_user = [e for e in events if int(e["user_id"].rsplit("-", 1)[1]) % 2 == 0]
    by_event = [e for e in events if e not in by_user]
    again = by_user[::5]

    def messages(batch: list[dict[str, Any]], key: str) -> list[tuple[str, bytes, bytes]]:
        return [(settings.topic_for(e["event_type"]), e[key].encode(), orjson.dumps(e))
                for e in batch]

    produce(settings, messages(by_user, "user_id"), partitioner="murmur2_random")
    produce(settings, messages(by_event + again, "event_id"))

    expected = offline_states(events, settings)

    def user_doc(user: str) -> dict[str, Any] | None:
        status, body = worker.get(f"/users/{user}")
        return body if status == 200 else None  # 404 until the user's first event

    def applied() -> bool:
        return all(state_matches(user_doc(user), state) for user, state in expected.items())

    wait_for(applied, 60, "every user's state, each event applied once")
    reader = TopicReader(settings, [settings.topic_recommendations])
    try:
        def fresh() -> dict[str, dict[str, Any]]:
            reader.poll()
            latest = latest_by_user(reader.values(settings.topic_recommendations))
            ok = all(latest.get(user, {}).get("trigger", {}).get("event_id")
                     == newest_event_id(events, user) for user in expected)
            return latest if ok else {}

        wait_for(fresh, 30, "a recommendation for every user's newest event")
    finally:
        reader.close()

    def all_counted() -> dict[str, float]:
        # the copies sent again change no state: wait until they are counted as well
        routed = metric_values(worker.base_url, "streamrec_events_routed_total", "path")
        duplicates = metric_values(worker.base_url, "streamrec_duplicates_dropped_total")
        done = (sum(routed.values()) == len(events) + len(again)
                and sum(duplicates.values()) == len(again))
        return routed if done else {}

    routed = wait_for(all_counted, 30, "every event routed and each copy dropped once")
    assert routed["direct"] >= len(by_user)  # every user-keyed event: one worker owns all
    assert routed["rekeyed"] > 0


def latest_by_user(recommendations: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for rec in recommendations:
        latest[rec["user_id"]] = rec
    return latest


def newest_event_id(events: list[dict[str, Any]], user: str) -> str:
    mine = [e for e in events if e["user_id"] == user]
    return max(mine, key=lambda e: e["timestamp"])["event_id"]


def fetch_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()
