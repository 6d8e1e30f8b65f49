"""Python's garbage collector in a long-running worker: frozen start-up heap, timed pauses.

A full (generation 2) collection traverses every container object the process holds; a
worker holds about a hundred thousand from start-up on (modules, Faust's machinery, what
the model and catalogue code keep in Python objects), and each full collection stops the
event loop while it walks them. Measured on the shared 2-core machine (load 4-10): 105k
objects after ``create_worker``, 90-240 ms per full collection; a worker under load ran one
about every 20 s (``python_gc_collections_total{generation="2"}``: 33 in 10 minutes). Once
the worker is first ready (model loaded, catalogue indexed, tables recovered)
:func:`freeze_when_ready` collects once and calls ``gc.freeze()``: what is alive then moves
to the permanent generation, which collections no longer traverse (the same full collection
then took under 0.01 ms). What the worker allocates afterwards (events, user records, a new
model version) is collected as before.

Every collection's pause is timed into ``streamrec_gc_pause_seconds{generation}``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Histogram

log = logging.getLogger(__name__)

READY_POLL_S = 0.5


def time_pauses(histogram: Histogram) -> Callable[[str, dict[str, Any]], None]:
    """A ``gc.callbacks`` entry observing each collection's pause (seconds) by generation;
    the caller registers (and may remove) it."""
    children = {generation: histogram.labels(generation=str(generation))
                for generation in range(3)}
    started = [0.0]

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            children[info["generation"]].observe(time.perf_counter() - started[0])

    return on_collection


async def freeze_when_ready(is_ready: Callable[[], bool], poll_s: float = READY_POLL_S
                            ) -> int:
    """Once ``is_ready()``: one full collection, then ``gc.freeze()``. Returns how many
    objects were frozen."""
    while not is_ready():
        await asyncio.sleep(poll_s)
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("garbage collector: %d start-up objects frozen (full collection took %.0f ms); "
             "later collections no longer traverse them", frozen,
             (time.perf_counter() - started) * 1000)
    return frozen


def register_collector(app: Any, pauses: Histogram, is_ready: Callable[[], bool]) -> None:
    """While the worker runs: time every collection, and freeze the start-up heap once
    ready."""

    @app.task
    async def collector() -> None:
        gc.callbacks.append(time_pauses(pauses))
        await freeze_when_ready(is_ready)
