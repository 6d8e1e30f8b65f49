"""The control topic for the commands: the snapshot fold, reading the whole topic to its
exact end, writing one acknowledged record, and clear errors when the broker or the topic is
missing."""

from __future__ import annotations

import dataclasses
import doctest
import logging
import time
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

import streams.control.topic
from devtools.broker import EmbeddedBroker
from devtools.processes import free_port
from schemas.control import (
    TRENDING_VERSION,
    ControlRemoved,
    Experiment,
    InvalidControlRecordError,
    Promotion,
    Variant,
    encode_control,
)
from streams.control import ControlTopicError
from streams.control.topic import (
    ControlSnapshot,
    apply_records,
    publish_control,
    read_control_snapshot,
)
from streams.errors import StreamrecError
from streams.settings import Settings
from tests.support import isolated_settings, produce

SALT = "00112233445566778899aabbccddeeff"
PROMOTION = Promotion("sessattn-0123456789ab", ("trending",), 1, "promote")


def experiment(name: str, status: str = "running", started: int = 1,
               versions: tuple[str, ...] = ("m-aaaaaaaaaaaa", TRENDING_VERSION),
               shadow: str | None = "m-bbbbbbbbbbbb") -> Experiment:
    share = 1 / len(versions)
    return Experiment(name, SALT, tuple(Variant(chr(65 + i), v, share)
                                        for i, v in enumerate(versions)),
                      None if shadow is None else Variant("S", shadow, 0.0), status,
                      started, started)


def record(key: str, value: bytes | None, offset: int = 0) -> SimpleNamespace:
    return SimpleNamespace(key=key.encode(), value=value, topic="control", partition=0,
                           offset=offset)


# --- the fold ------------------------------------------------------------------------------

def test_an_empty_topic_promotes_nothing_and_needs_no_version() -> None:
    empty = ControlSnapshot.empty()
    assert empty.promotion is None and dict(empty.experiments) == {}
    assert empty.running() is None and empty.versions_needed() == frozenset()


def test_records_fold_into_the_newest_state_per_key() -> None:
    spring, summer = experiment("spring"), experiment("summer", status="stopped")
    snapshot = (ControlSnapshot.empty().apply(PROMOTION).apply(spring).apply(summer))
    assert snapshot.promotion == PROMOTION
    assert dict(snapshot.experiments) == {"spring": spring, "summer": summer}
    assert snapshot.running() == spring
    assert snapshot.versions_needed() == {"sessattn-0123456789ab", "m-aaaaaaaaaaaa",
                                          "m-bbbbbbbbbbbb"}
    stopped = snapshot.apply(dataclasses.replace(spring, status="stopped"))
    assert stopped.running() is None
    assert stopped.versions_needed() == {"sessattn-0123456789ab"}
    removed = stopped.apply(ControlRemoved("experiment/spring")).apply(
        ControlRemoved("promotion"))
    assert removed.promotion is None and list(removed.experiments) == ["summer"]
    assert snapshot.experiments["spring"] == spring  # snapshots are never changed in place


def test_a_trending_promotion_needs_no_model() -> None:
    snapshot = ControlSnapshot.empty().apply(Promotion(TRENDING_VERSION, (), 1, "rollback"))
    assert snapshot.versions_needed() == frozenset()


def test_of_several_running_experiments_the_latest_started_counts() -> None:
    snapshot = (ControlSnapshot.empty().apply(experiment("b", started=5))
                .apply(experiment("a", started=9)).apply(experiment("c", started=5)))
    assert snapshot.running().name == "a"  # type: ignore[union-attr]


def test_bad_records_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    good = encode_control(PROMOTION)[1]
    worse = orjson.dumps({**orjson.loads(good), "version": "no spaces allowed"})
    with caplog.at_level(logging.WARNING, logger="streams.control.topic"):
        snapshot = apply_records(ControlSnapshot.empty(), [
            record("promotion", good), record("promotion", worse, 1),
            record("experiment/x", b"{", 2)])
    assert snapshot.promotion == PROMOTION
    assert "control[0]@1 (schema_violation" in caplog.text
    assert "control[0]@2 (invalid_json" in caplog.text


def test_snapshots_compare_by_content() -> None:
    assert ControlSnapshot.empty().apply(PROMOTION) == ControlSnapshot.empty().apply(PROMOTION)
    assert ControlSnapshot.empty() != ControlSnapshot.empty().apply(PROMOTION)


# --- against the broker --------------------------------------------------------------------

def test_published_records_are_read_back_to_the_exact_end(settings: Settings) -> None:
    assert read_control_snapshot(settings) == ControlSnapshot.empty()
    spring = experiment("spring")
    publish_control(settings, PROMOTION)
    publish_control(settings, spring)
    # Several records in one batch, and a bad one: the reader must reach the last offset.
    newer = Promotion("sessattn-bbbbbbbbbbbb", ("sessattn-0123456789ab", "trending"), 2,
                      "promote")
    produce(settings, [(settings.topic_control, b"promotion", b"{broken"),
                       (settings.topic_control, *encode_control(newer)),
                       (settings.topic_control, b"experiment/gone",
                        encode_control(experiment("gone", status="stopped"))[1]),
                       (settings.topic_control, b"experiment/gone", None)])
    snapshot = read_control_snapshot(settings)
    assert snapshot.promotion == newer
    assert dict(snapshot.experiments) == {"spring": spring}


def test_an_invalid_record_is_never_sent(settings: Settings) -> None:
    with pytest.raises(InvalidControlRecordError):
        publish_control(settings, dataclasses.replace(PROMOTION, version="../x"))
    assert read_control_snapshot(settings) == ControlSnapshot.empty()


def test_a_missing_topic_is_named_with_the_fix(broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = isolated_settings(broker.url, tmp_path)  # topics not created
    started = time.monotonic()
    with pytest.raises(ControlTopicError, match="does not exist.*streamrec topics create"):
        read_control_snapshot(settings, timeout_s=4)
    assert time.monotonic() - started < 10


def test_an_unreachable_broker_is_an_operator_error(tmp_path: Path) -> None:
    settings = Settings(broker_url=f"kafka://127.0.0.1:{free_port()}", data_dir=tmp_path)
    with pytest.raises(ControlTopicError, match="no broker answered") as raised:
        read_control_snapshot(settings, timeout_s=5)
    assert isinstance(raised.value, StreamrecError)
    with pytest.raises(ControlTopicError, match="did not acknowledge|refused"):
        publish_control(settings, PROMOTION, timeout_s=1)


def test_the_docstring_examples_run() -> None:
    result = doctest.testmod(streams.control.topic)
    assert result.attempted > 0 and result.failed == 0
