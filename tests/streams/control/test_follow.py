"""The worker's control-topic reader against the real broker: one snapshot after the first
read (also of an empty topic), then one per change, bad records skipped, a restart reading
everything again."""

from __future__ import annotations

import dataclasses

from schemas.control import Experiment, Promotion, Variant, encode_control
from streams.control.topic import ControlSnapshot, publish_control
from streams.settings import Settings
from tests.streams.control.conftest import Follower
from tests.support import produce

SALT = "00112233445566778899aabbccddeeff"
FIRST = Promotion("sessattn-aaaaaaaaaaaa", (), 1, "promote")
SECOND = Promotion("sessattn-bbbbbbbbbbbb", ("sessattn-aaaaaaaaaaaa",), 2, "promote")
SPRING = Experiment("spring", SALT, (Variant("A", "sessattn-aaaaaaaaaaaa", 0.5),
                                     Variant("B", "trending", 0.5)), None, "running", 3, 3)


def test_an_empty_topic_gives_one_empty_snapshot(settings: Settings,
                                                 follower: Follower) -> None:
    follower.wait(lambda s: s == ControlSnapshot.empty(), "the empty first read")
    publish_control(settings, FIRST)
    follower.wait(lambda s: s.promotion == FIRST, "the promotion")
    assert follower.snapshots == [ControlSnapshot.empty(),
                                  ControlSnapshot.empty().apply(FIRST)]


def test_the_topic_is_followed_live_and_read_again_after_a_restart(settings: Settings) -> None:
    publish_control(settings, FIRST)
    produce(settings, [(settings.topic_control, b"promotion", b'{"kind": "promotion"}')])
    publish_control(settings, SPRING)
    follower = Follower(settings).start()
    try:
        first = follower.wait(lambda s: True, "the first read")
        # One snapshot for everything already there; the bad record is skipped.
        assert first.promotion == FIRST and first.running() == SPRING
        assert len(follower.snapshots) == 1

        publish_control(settings, SECOND)
        follower.wait(lambda s: s.promotion == SECOND, "the second promotion")
        stopped = dataclasses.replace(SPRING, status="stopped", updated_at_ms=4)
        publish_control(settings, stopped)
        follower.wait(lambda s: s.running() is None, "the experiment stopped")
        produce(settings, [(settings.topic_control, *encode_control(stopped))])  # no change
        publish_control(settings, FIRST)
        last = follower.wait(lambda s: s.promotion == FIRST, "the third promotion")
        assert [s.promotion for s in follower.snapshots] == [FIRST, SECOND, SECOND, FIRST]
        assert dict(last.experiments) == {"spring": stopped}
    finally:
        follower.stop()

    again = Follower(settings).start()
    try:
        assert again.wait(lambda s: True, "the re-read") == last
    finally:
        again.stop()
