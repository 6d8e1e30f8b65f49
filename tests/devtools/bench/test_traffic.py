"""The load generator's keys: event ids by default, user ids with Kafka's partitioner."""

from __future__ import annotations

import orjson
import pytest

from devtools.bench.traffic import PRODUCER_CONFIG, _stamped, producer_config

EVENT = {"event_id": "e-1", "event_type": "view", "user_id": "u-7", "item_id": "i-1",
         "timestamp": 0}


def test_keys_by_event_id_by_default_with_librdkafkas_partitioner() -> None:
    key, value = _stamped(EVENT, "run-3")
    assert key == b"run-3"
    assert orjson.loads(value)["event_id"] == "run-3"
    assert producer_config("event") == PRODUCER_CONFIG


def test_keys_by_user_id_with_kafkas_murmur2_partitioner() -> None:
    key, value = _stamped(EVENT, "run-3", key_by="user")
    assert key == b"u-7"
    assert orjson.loads(value)["event_id"] == "run-3"
    assert producer_config("user")["partitioner"] == "murmur2_random"


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(ValueError, match="key_by"):
        producer_config("item")
