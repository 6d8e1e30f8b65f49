"""``/users/{id}`` on any worker answers for every user: the owner's answer, forwarded.

Behind a Kubernetes Service a request reaches any worker, while a user's state lives only on
the worker that owns the user's partition. Two real workers share four partitions; users
spread over all four. Every user is asked of EACH worker: every answer is 200 with that
user's exact state, and ``X-Streamrec-Served-By`` shows it came from the same owner
whichever worker was asked (so each worker answered some users itself and forwarded the
others). The events are sent with the producer client (``streams.client``).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.client import EventProducer
from streams.kafka.partitioning import user_partition
from streams.kafka.topics import create_topics
from streams.ops.web import SERVED_BY
from streams.settings import Settings
from tests.support import (
    FAST_GROUP,
    WorkerProcess,
    isolated_settings,
    offline_states,
    state_matches,
    wait_for,
)

USERS = 40
EVENTS_PER_USER = 3
PARTITIONS = 4
TYPES = ("view", "click", "add_to_cart", "purchase")


@pytest.fixture
def settings(broker: Any, tmp_path: Path) -> Settings:
    settings = isolated_settings(broker.url, tmp_path, topic_partitions=PARTITIONS,
                                 **FAST_GROUP)
    create_topics(settings)
    return settings


def fetch(worker: WorkerProcess, user: str) -> tuple[int, Any, str | None]:
    """Status, JSON body and the worker that served it, as a client sees them."""
    try:
        with urllib.request.urlopen(f"{worker.base_url}/users/{user}", timeout=10) as response:
            return response.status, orjson.loads(response.read()), response.headers[SERVED_BY]
    except urllib.error.HTTPError as exc:
        return exc.code, None, exc.headers.get(SERVED_BY)
    except (urllib.error.URLError, OSError):
        return 0, None, None


def test_every_worker_answers_for_every_user(
    settings: Settings, workers: list[WorkerProcess]
) -> None:
    for worker in workers:
        worker.wait_ready()
    start_ms = int(time.time() * 1000) - 60_000
    events = [{"event_id": f"ur-{u}-{n}", "event_type": TYPES[(u + n) % len(TYPES)],
               "user_id": f"ur-user-{u}", "item_id": f"item-{(u * 5 + n) % 23}",
               "timestamp": start_ms + n * 1000 + u, "session_id": f"ur-s-{u}"}
              for n in range(EVENTS_PER_USER) for u in range(USERS)]
    with EventProducer(settings) as producer:
        for event in events:
            producer.send(event)
    expected = offline_states(events, settings)
    assert {user_partition(user, PARTITIONS) for user in expected} == set(range(PARTITIONS))

    served_by: dict[tuple[int, str], str | None] = {}

    def every_worker_serves_every_user() -> bool:
        for index, worker in enumerate(workers):
            if worker.process.poll() is not None:
                raise AssertionError(f"worker {index} exited:\n{worker.log_tail()}")
            for user, state in expected.items():
                status, doc, server = fetch(worker, user)
                if status != 200 or not state_matches(doc, state) or doc["user_id"] != user:
                    return False
                served_by[index, user] = server
        return True

    wait_for(every_worker_serves_every_user, 90,
             "both workers to answer 200 with the right state for every user", interval_s=0.3)

    urls = {f"http://127.0.0.1:{w.settings.web_port}" for w in workers}
    for user in expected:
        # The same owner answered, whichever worker was asked.
        assert served_by[0, user] == served_by[1, user] in urls, user
    owners = {served_by[0, user] for user in expected}
    assert owners == urls, "both workers own partitions, so each forwarded some requests"
    # All of a partition's users have one owner.
    by_partition: dict[int, set[str | None]] = {}
    for user in expected:
        by_partition.setdefault(user_partition(user, PARTITIONS), set()).add(
            served_by[0, user])
    assert all(len(servers) == 1 for servers in by_partition.values()), by_partition

    # A user nobody has seen is a 404 from the owner, on either worker (not a 503).
    for worker in workers:
        status, doc, _ = fetch(worker, "never-seen-user")
        assert status == 404, (status, doc)
