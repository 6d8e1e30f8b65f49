"""A stored user record that cannot be decoded costs that user's history, not the partition.

The worker is stopped; two users' records and the partition's trending board in its RocksDB
files are overwritten with bytes that do not decode, and the worker is started again on the
same directory. Its metrics sampler reads the corrupt board without stopping; the next event
of the first user is applied to fresh state and the board is replaced, each counted once in
``streamrec_state_records_discarded_total``; the other intact user keeps their state; the
corrupt user who sent nothing keeps the corrupt record (the TTL sweep does not delete what
it cannot read: a rebuild from the changelog may still restore it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
from rocksdict import Options, Rdict

from devtools.broker import EmbeddedBroker
from streams.kafka.topics import create_topics
from tests.support import (
    FAST_GROUP,
    WorkerProcess,
    isolated_settings,
    metric_values,
    offline_states,
    produce,
    state_matches,
    wait_for,
)

CORRUPT = b"\x00\x00\x00\x05{bad}"


def event(n: int, user: str, item: str, time_ms: int) -> dict[str, Any]:
    return {"event_id": f"{user}-e{n}", "event_type": "view", "user_id": user,
            "item_id": item, "timestamp": time_ms}


def test_undecodable_records_are_counted_replaced_when_written_and_never_deleted(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = isolated_settings(broker.url, tmp_path, topic_partitions=1, **FAST_GROUP)
    create_topics(settings)
    now = int(time.time() * 1000) - 60_000
    first = [event(n, user, f"i{n}", now + n) for n in range(3)
             for user in ("alice", "bob", "carol")]
    later = [event(9, "alice", "i9", now + 9_000), event(9, "bob", "i9", now + 9_000)]

    def send(events: list[dict[str, Any]]) -> None:
        produce(settings, [(settings.topic_for(e["event_type"]), e["user_id"].encode(),
                            orjson.dumps(e)) for e in events])

    def user_doc(user: str) -> Any:
        status, doc = worker.get(f"/users/{user}")
        return doc if status == 200 else None

    def overwrite(db_name: str, keys: list[bytes]) -> None:
        [db_path] = list(settings.data_dir.rglob(db_name))
        db = Rdict(str(db_path), options=Options(raw_mode=True))
        try:
            for key in keys:
                assert db.get(key) is not None, key
                db[key] = CORRUPT
        finally:
            db.close()

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        send(first)
        before = offline_states(first, settings)
        wait_for(lambda: all(state_matches(user_doc(u), s) for u, s in before.items()),
                 60, "both users applied")
        worker.stop()
        overwrite("users-0.db", [b"alice", b"carol"])
        overwrite("trending-0.db", [b"p0"])

        worker.start()
        worker.wait_ready()
        # The sampler decodes every board; the gauge set after it proves it got past.
        wait_for(lambda: sum(metric_values(worker.base_url, "streamrec_state_disk_bytes")
                             .values()) > 0, 30, "a metrics sample over the corrupt board")
        status, doc = worker.get("/users/alice")
        assert status == 500 and "cannot be decoded" in doc["error"]

        send(later)
        after = {"alice": offline_states([later[0]], settings)["alice"],
                 "bob": offline_states(first + later, settings)["bob"]}  # carol sends nothing
        wait_for(lambda: all(state_matches(user_doc(u), s) for u, s in after.items()),
                 60, "alice afresh, bob with all his events")
        assert after["alice"].events_applied == 1
        discarded = metric_values(worker.base_url, "streamrec_state_records_discarded_total",
                                  "table")
        assert discarded == {"users": 1.0, "trending": 1.0}
        assert worker.get("/users/carol")[0] == 500  # left alone, not deleted
        assert worker.process.poll() is None
        assert "discarded a stored record that cannot be decoded" in worker.log_tail(200)
    finally:
        worker.stop()
        print(worker.log_tail(30))
