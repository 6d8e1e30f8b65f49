"""The garbage collector: pauses timed by generation, the start-up heap frozen once ready."""

from __future__ import annotations

import asyncio
import gc

from prometheus_client import CollectorRegistry

from streams.ops.collector import freeze_when_ready, time_pauses
from streams.ops.metrics import create_metrics


def test_every_collection_is_timed_by_generation() -> None:
    metrics = create_metrics(CollectorRegistry())
    callback = time_pauses(metrics.gc_pause_seconds)
    gc.callbacks.append(callback)
    try:
        gc.collect(1)
        gc.collect(2)
    finally:
        gc.callbacks.remove(callback)
    count = metrics.registry.get_sample_value
    assert count("streamrec_gc_pause_seconds_count", {"generation": "1"}) >= 1
    assert count("streamrec_gc_pause_seconds_count", {"generation": "2"}) >= 1


def test_the_heap_is_frozen_only_once_the_worker_is_ready() -> None:
    answers = iter([False, False, True])
    asked: list[int] = []

    def is_ready() -> bool:
        asked.append(gc.get_freeze_count())
        return next(answers)

    try:
        frozen = asyncio.run(freeze_when_ready(is_ready, poll_s=0))
        assert asked == [0, 0, 0]  # nothing frozen while not ready
        assert frozen > 0  # (some frozen objects may be freed since, by reference counting)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
