"""Adaptive micro-batches: a batch is handed over once nothing more is pending for it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from streams.kafka.take import _gather_pending


@dataclass
class Queue:
    """A channel queue seen from outside: ``pending`` records not yet in the buffer."""

    pending: int = 0

    def empty(self) -> bool:
        return self.pending == 0


async def feeder(buffer: list[int], queue: Queue) -> None:
    """The stream's drainer: one pending record into the buffer per loop turn."""
    while queue.pending:
        await asyncio.sleep(0)
        queue.pending -= 1
        buffer.append(len(buffer))


def gather(buffer: list[int], queue: Queue, full: asyncio.Event | None = None,
           within_s: float = 10.0) -> float:
    async def run() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        fed = asyncio.ensure_future(feeder(buffer, queue))
        await _gather_pending(buffer, full or asyncio.Event(), queue, started + within_s)
        fed.cancel()
        return loop.time() - started

    return asyncio.run(run())


def test_an_idle_stream_hands_its_one_event_over_at_once() -> None:
    buffer = [0]
    assert gather(buffer, Queue(pending=0)) < 0.5  # not the 10 s window
    assert buffer == [0]


def test_what_is_already_fetched_joins_the_batch_first() -> None:
    buffer = [0]
    gather(buffer, Queue(pending=40))
    assert len(buffer) == 41


def test_a_full_batch_is_handed_over_without_waiting_for_the_rest() -> None:
    buffer = [0, 1, 2]
    full = asyncio.Event()
    full.set()
    queue = Queue(pending=40)
    gather(buffer, queue, full)
    assert len(buffer) == 3


def test_a_queue_that_never_empties_is_cut_at_the_window() -> None:
    class Stuck(Queue):
        def empty(self) -> bool:
            return False  # records pending, but the drainer does not move them

    buffer = [0]
    queue = Stuck(pending=0)
    assert gather(buffer, queue, within_s=0.05) >= 0.05
