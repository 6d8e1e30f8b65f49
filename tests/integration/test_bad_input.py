"""Bad input through a real broker: over 10,000 malformed records of every reason code.

Hypothesis draws the records (``tests/integration/bad_payloads.py``): for each reason the
ingest path can give, records built to be wrong in exactly that way, plus valid events
(some with null keys, RFC 3339 timestamps with offsets, unknown extra fields; searches among
them), all mixed and published with confluent-kafka to the four input topics and the erasure
topic. Then:

* every bad record is in the dead-letter topic exactly once, found by its source
  (topic, partition, offset) and carrying the original key and value bytes and the reason
  it was built for;
* no valid event is dead-lettered, and every one is in its user's state (counts per type
  and ``events_applied``, read from ``/users``), and every user got a recommendation;
* ``streamrec_dead_letters_total{reason}`` agrees with the records, and the worker is
  still running.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from devtools.broker import EmbeddedBroker
from streams.kafka.topics import create_topics
from streams.settings import Settings
from tests.integration.bad_payloads import (
    EVENT_TYPES,
    INGEST_REASONS,
    KEYS,
    Case,
    bad_case,
    bad_erasure,
    valid_case,
    valid_event,
)
from tests.support import (
    FAST_GROUP,
    TopicReader,
    WorkerProcess,
    isolated_settings,
    metric_values,
    produce_with_offsets,
    wait_for,
)

MAX_PAYLOAD = 2048
BAD_RECORDS = 10_000
USERS = [f"bi-user-{n}" for n in range(100)] + [
    "ü-用户-1", "user with spaces", "émoji-🎉", "Ωmega", "a:b;c", "x" * 256,
]


def draw_cases(now_ms: int, minimum_bad: int) -> list[Case]:
    """Run a hypothesis generator until it has drawn ``minimum_bad`` bad records (each
    example is a list of records, so a few hundred examples are enough)."""
    cases: list[Case] = []

    @hypothesis_settings(max_examples=51, database=None, phases=[Phase.generate],
                         deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        bad=st.lists(bad_case(now_ms, MAX_PAYLOAD), min_size=50, max_size=50),
        erasures=st.lists(bad_erasure(), max_size=2),
        valid=st.lists(st.tuples(valid_event(now_ms, USERS), KEYS), min_size=12,
                       max_size=12),
    )
    def collect(bad: list[Case], erasures: list[Case],
                valid: list[tuple[dict[str, Any], bytes | None]]) -> None:
        cases.extend(bad)
        cases.extend(erasures)
        for event, key in valid:
            event = {**event, "event_id": f"bi-{len(cases)}"}
            cases.append(valid_case(event, key))

    while sum(case.reason is not None for case in cases) < minimum_bad:
        collect()
    return cases


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    settings = isolated_settings(broker.url, tmp_path, max_payload_bytes=MAX_PAYLOAD,
                                 batch_max_events=2000, **FAST_GROUP)
    create_topics(settings)
    return settings


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        yield process
    finally:
        process.stop()


def test_every_bad_record_is_dead_lettered_once_with_its_reason(
    settings: Settings, worker: WorkerProcess
) -> None:
    cases = draw_cases(int(time.time() * 1000), BAD_RECORDS)  # while the worker starts
    bad = [case for case in cases if case.reason is not None]
    valid = [case for case in cases if case.reason is None]
    assert {case.reason for case in bad} == {str(r) for r in INGEST_REASONS}
    assert any(case.key is None for case in valid)
    assert any(case.event_type == "search" for case in valid)
    worker.wait_ready()

    prefix = settings.topic_views.rsplit(".", 1)[0]
    coordinates = produce_with_offsets(
        settings, [(f"{prefix}.{case.topic}", case.key, case.value) for case in cases])
    sent = dict(zip(coordinates, cases, strict=True))
    bad_at = {where for where, case in sent.items() if case.reason is not None}

    reader = TopicReader(settings, [settings.topic_dead_letter,
                                    settings.topic_recommendations])
    try:
        def all_consumed() -> bool:
            reader.poll()
            consumed = metric_values(worker.base_url, "streamrec_events_consumed_total")
            dead = sum(m.topic() == settings.topic_dead_letter for m in reader.messages)
            return sum(consumed.values()) >= len(cases) and dead >= len(bad)

        wait_for(all_consumed, 60, "every record consumed and every bad one dead-lettered",
                 interval_s=0.5)
        reader.poll()  # anything dead-lettered twice would be here by now
        dead_letters = [orjson.loads(m.value()) for m in reader.messages
                        if m.topic() == settings.topic_dead_letter]

        # Every valid event is in its user's state; every user gets a recommendation.
        # Consumed is not yet applied: the state hop and its recommendation come after.
        expected: dict[str, Counter[str]] = {}
        for case in valid:
            assert case.user is not None and case.event_type is not None
            expected.setdefault(case.user, Counter())[case.event_type] += 1

        def user_counts(user: str) -> tuple[dict[str, int], int] | None:
            status, doc = worker.get("/users/" + quote(user, safe=""))
            return (doc["counts"], doc["events_applied"]) if status == 200 else None

        def states_complete() -> bool:
            return all(
                user_counts(user) == ({t: counts[t] for t in EVENT_TYPES}, counts.total())
                for user, counts in expected.items()
            )

        def recommended() -> set[bytes]:
            reader.poll()
            return {m.key() for m in reader.messages
                    if m.topic() == settings.topic_recommendations}

        wait_for(states_complete, 30, "every valid event in its user's state", interval_s=0.5)
        wanted = {user.encode() for user in expected}
        wait_for(lambda: wanted <= recommended(), 30, "a recommendation for every user",
                 interval_s=0.5)
    finally:
        reader.close()

    # Every bad record exactly once, with its own bytes and the reason it was built for.
    found = Counter((d["source"]["topic"], d["source"]["partition"], d["source"]["offset"])
                    for d in dead_letters)
    assert [where for where, n in found.items() if n > 1] == []
    assert set(found) - bad_at == set(), "valid events were dead-lettered"
    assert bad_at - set(found) == set(), "bad records were not dead-lettered"
    wrong = []
    for dead in dead_letters:
        source = dead["source"]
        case = sent[(source["topic"], source["partition"], source["offset"])]
        original = (None if dead["original_value_b64"] is None
                    else base64.b64decode(dead["original_value_b64"]))
        key = (None if dead["original_key_b64"] is None
               else base64.b64decode(dead["original_key_b64"]))
        if (dead["reason"], original, key) != (case.reason, case.value, case.key):
            wrong.append((case, dead["reason"], dead["detail"]))
    assert wrong == [], f"{len(wrong)} dead letters disagree, e.g. {wrong[:5]}"

    # The metric agrees with the dead letters, reason by reason.
    counted = metric_values(worker.base_url, "streamrec_dead_letters_total", "reason")
    expected_reasons = Counter(case.reason for case in bad)
    assert {r: int(v) for r, v in counted.items() if v} == dict(expected_reasons)

    assert worker.process.poll() is None
    assert worker.get("/healthz")[0] == 200
    print(f"sent {len(bad)} bad records {dict(sorted(expected_reasons.items()))} and "
          f"{len(valid)} valid events for {len(expected)} users")
