"""Pseudonymisation, the right to erasure, and access to ``/users``, through the real worker.

With ``STREAMREC_PSEUDONYMISATION_KEY`` set, the raw user id appears nowhere the worker
writes: not in state keys (the ``users`` changelog), not in the internal topic, not in
recommendations, not in the worker's log; ``/users/{HMAC-SHA256(key, id)}`` serves the
state. ``streamrec erase-user <raw id>`` deletes the user's state (404, a tombstone in the
changelog) and their deduplication memory (an old event id is applied again, as new), and
puts a tombstone for the user's key on ``recommendations``. ``/users`` needs the bearer
token when one is set, and is absent when switched off.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from devtools.broker import EmbeddedBroker
from streams.kafka.topics import create_topics
from streams.settings import Settings
from tests.support import (
    FAST_GROUP,
    REPO,
    TopicReader,
    WorkerProcess,
    isolated_settings,
    metric_values,
    produce,
    wait_for,
)

KEY = "test-pseudonymisation-key-9f3a"
TOKEN = "s3cret-users-token"
RAW_USERS = ["alice.raw.7731", "bob.raw.4410", "carol.raw.1903"]
EVENTS_PER_USER = 4


def pseudonym(user: str) -> str:
    return hmac.new(KEY.encode(), user.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    settings = isolated_settings(broker.url, tmp_path, pseudonymisation_key=KEY,
                                 users_api_token=TOKEN, **FAST_GROUP)
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


def get_user(worker: WorkerProcess, user_id: str, token: str | None = TOKEN,
             scheme: str = "Bearer") -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{worker.base_url}/users/{user_id}")
    if token is not None:
        request.add_header("Authorization", f"{scheme} {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def make_events(start_ms: int) -> list[dict[str, Any]]:
    return [{"event_id": f"pv-{u}-{n}", "event_type": ("view", "click", "purchase")[n % 3],
             "user_id": user, "item_id": f"item-{u}-{n}", "timestamp": start_ms + n * 1000,
             "session_id": f"session-{u}"}
            for u, user in enumerate(RAW_USERS) for n in range(EVENTS_PER_USER)]


def send(settings: Settings, events: list[dict[str, Any]]) -> None:
    # Producers key by the raw user id: the worker must not carry it any further.
    produce(settings, [(settings.topic_for(e["event_type"]), e["user_id"].encode(),
                        orjson.dumps(e)) for e in events])


def test_pseudonymised_ids_erasure_and_token(settings: Settings, worker: WorkerProcess,
                                             tmp_path: Path) -> None:
    events = make_events(int(time.time() * 1000) - 60_000)
    send(settings, events)
    alice, bob = (pseudonym(u) for u in RAW_USERS[:2])

    def applied(user: str, n: int) -> bool:
        status, doc = get_user(worker, user)
        return status == 200 and doc["events_applied"] == n

    wait_for(lambda: all(applied(pseudonym(u), EVENTS_PER_USER) for u in RAW_USERS), 30,
             "every user's events applied under their pseudonym")

    # Access control on /users.
    assert get_user(worker, alice, token=None)[0] == 401
    assert get_user(worker, alice, token="wrong")[0] == 401
    assert get_user(worker, alice, token=TOKEN, scheme="Basic")[0] == 401
    assert get_user(worker, alice, token=TOKEN, scheme="bearer")[0] == 200
    assert get_user(worker, RAW_USERS[0])[0] == 404  # state is not keyed by the raw id
    status, doc = get_user(worker, alice)
    assert doc["user_id"] == alice and doc["last_recommendation"]["user_id"] == alice

    # Erasure of alice by her raw id, through the real command.
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "erase-user", RAW_USERS[0]],
        env={**os.environ, **settings.to_env()}, cwd=REPO, capture_output=True,
        text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: get_user(worker, alice)[0] == 404, 30, "alice's state erased")
    assert applied(bob, EVENTS_PER_USER)
    assert sum(metric_values(worker.base_url, "streamrec_users_erased_total").values()) == 1

    # Her deduplication memory went with it: an old event id counts again, as new.
    send(settings, [events[0]])
    wait_for(lambda: applied(alice, 1), 30, "alice's replayed event applied as new")
    status, doc = get_user(worker, alice)
    assert doc["counts"][events[0]["event_type"]] == 1 and len(doc["recent"]) == 1

    changelog = f"{settings.app_id}-users-changelog"
    topics = [settings.topic_recommendations, settings.topic_events_by_user, changelog]
    reader = TopicReader(settings, topics)
    try:
        def seen_all() -> bool:
            reader.poll()
            recs = [m for m in reader.messages if m.topic() == settings.topic_recommendations]
            # initial recommendations, the erasure tombstone, the one after the replay
            return any(m.value() is None for m in recs) and sum(
                m.key() == alice.encode() for m in recs) >= 3
        wait_for(seen_all, 30, "recommendations, tombstone included")
        records = list(reader.messages)
    finally:
        reader.close()

    recs = [m for m in records if m.topic() == settings.topic_recommendations]
    alice_recs = [m.value() for m in recs if m.key() == alice.encode()]
    tombstone_at = alice_recs.index(None)
    assert tombstone_at > 0 and alice_recs[-1] is not None  # recommended, erased, again
    assert {m.key() for m in recs} == {pseudonym(u).encode() for u in RAW_USERS}
    changes = [m for m in records if m.topic() == changelog]
    assert {m.key() for m in changes} == {pseudonym(u).encode() for u in RAW_USERS}
    assert any(m.key() == alice.encode() and m.value() is None for m in changes), (
        "no tombstone in the users changelog: a recovery would bring alice back")

    # The raw ids appear in nothing the worker wrote, nor in its log; neither does the key.
    for message in records:
        blob = (message.key() or b"") + (message.value() or b"")
        for raw in RAW_USERS:
            assert raw.encode() not in blob, f"{raw} in {message.topic()}"
    log = worker.log_path.read_text(errors="replace")
    for secret in [*RAW_USERS, KEY, TOKEN]:
        assert secret not in log, f"{secret!r} appears in the worker log"


def test_users_api_can_be_switched_off(broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = isolated_settings(broker.url, tmp_path, users_api_enabled=False, **FAST_GROUP)
    create_topics(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        send(settings, make_events(int(time.time() * 1000) - 60_000)[:1])
        wait_for(lambda: sum(metric_values(
            worker.base_url, "streamrec_recommendations_emitted_total").values()) >= 1,
            30, "the event processed")
        assert get_user(worker, RAW_USERS[0], token=None)[0] == 404
        assert worker.get("/readyz")[0] == 200
    finally:
        worker.stop()
