"""The ingest stage against the bad-record strategies of the integration test, offline.

The integration test (``tests/integration/test_bad_input.py``) sends 10,000+ of these
records through a real broker; here hypothesis draws them one at a time and can shrink a
failure to the smallest record the ingest stage gets wrong.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import DecodeLimits, EventType
from streams.ingest.batch import RawMessage, ingest
from tests.integration.bad_payloads import (
    KEYS,
    TOPIC_TYPES,
    Case,
    bad_case,
    bad_erasure,
    valid_case,
    valid_event,
)

NOW = 1_795_456_800_000
MAX_PAYLOAD = 2048
LIMITS = DecodeLimits(
    max_payload_bytes=MAX_PAYLOAD,
    topic_event_types={topic: [EventType(t) for t in types]
                       for topic, types in TOPIC_TYPES.items()},
)
USERS = ["u-1", "ü-用户", "x" * 256]


def run(case: Case) -> Any:
    message = RawMessage(topic=case.topic, partition=0, offset=0, timestamp_ms=None,
                         key=case.key, value=case.value)
    return ingest([message], limits=LIMITS, partitions=4, now_ms=NOW,
                  erasure_topic="user_erasure")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.one_of(bad_case(NOW, MAX_PAYLOAD), bad_erasure()))
def test_every_bad_record_gets_the_reason_it_was_built_for(case: Case) -> None:
    batch = run(case)
    assert [str(d.rejection.reason) for d in batch.dead_letters] == [case.reason]
    assert batch.bundles == {}


@settings(max_examples=200)
@given(event=valid_event(NOW, USERS), key=KEYS)
def test_valid_events_are_never_dead_lettered(event: dict[str, Any], key: bytes | None
                                              ) -> None:
    case = valid_case({**event, "event_id": "e-1"}, key)
    batch = run(case)
    assert batch.dead_letters == []
    (bundle,) = batch.bundles.values()
    assert [e.user_id for e in bundle.events] == [event["user_id"]]
