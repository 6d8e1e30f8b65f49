"""Stage timing: laps add up to the batch's wall time, waits are per record, and the loop-lag
probe sees a blocked event loop."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Histogram

from streams.ops.observe import measure_loop_lag
from streams.ops.stages import STAGE_BUCKETS, StageClock, observe_waits


def stage_histogram() -> Histogram:
    return Histogram("stage_seconds", "test", ["stage"], buckets=STAGE_BUCKETS,
                     registry=CollectorRegistry())


def test_laps_split_the_wall_time_between_stages() -> None:
    started = time.perf_counter()
    clock = StageClock(started)
    clock.lap("state")
    time.sleep(0.01)  # the work being timed, not a wait for something
    clock.lap("scoring")
    clock.lap("state")
    total = time.perf_counter() - started
    assert set(clock.spent) == {"state", "scoring"}
    assert clock.spent["scoring"] >= 0.01
    assert sum(clock.spent.values()) <= total
    histogram = stage_histogram()
    clock.observe(histogram)
    assert histogram.labels(stage="state")._sum.get() == clock.spent["state"]


def test_waits_are_observed_per_record_and_never_negative() -> None:
    histogram = stage_histogram()
    observe_waits(histogram, "input_wait", 10_000, [9_000, 10_500, None, 9_990])
    child = histogram.labels(stage="input_wait")
    assert child._sum.get() == 1.0 + 0.0 + 0.01
    samples = {s.name: s.value for m in histogram.collect() for s in m.samples
               if s.labels.get("stage") == "input_wait"}
    assert samples["stage_seconds_count"] == 3


def test_the_loop_lag_probe_sees_a_blocking_call() -> None:
    histogram = Histogram("lag", "test", buckets=STAGE_BUCKETS, registry=CollectorRegistry())

    async def scenario() -> None:
        probe = asyncio.ensure_future(measure_loop_lag(histogram, interval_s=0.01, rounds=2))
        await asyncio.sleep(0)
        time.sleep(0.05)  # a call that blocks the event loop: what the probe must see
        await probe

    asyncio.run(scenario())
    assert histogram._sum.get() >= 0.03
