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


async def feeder(buffer: list[int], queue: Queue, arrived: asyncio.Event) -> None:
    """The stream's drainer: one pending record into the buffer per loop turn."""
    while queue.pending:
        await asyncio.sleep(0)
        queue.pending -= 1
        buffer.append(len(buffer))
        arrived.set()


def gather(buffer: list[int], queue: Queue, full: asyncio.Event | None = None,
           within_s: float = 10.0) -> float:
    async def run() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        arrived = asyncio.Event()
        fed = asyncio.ensure_future(feeder(buffer, queue, arrived))
        await _gather_pending(buffer, full or asyncio.Event(), queue, started + within_s,
                              arrived)
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


def test_a_queue_that_never_empties_is_cut_at_the_window_without_spinning() -> None:
    class Stuck(Queue):
        looked = 0

        def empty(self) -> bool:
            self.looked += 1
            return False  # records pending, but the drainer does not move them

    buffer = [0]
    queue = Stuck(pending=0)
    assert gather(buffer, queue, within_s=0.05) >= 0.05
    # it waited for a record to arrive, instead of looking at the queue every loop turn
    # until the deadline (thousands of turns in 50 ms)
    assert queue.looked <= 3


def test_records_that_arrive_slowly_still_join_the_batch() -> None:
    async def run() -> list[int]:
        loop = asyncio.get_running_loop()
        buffer, queue, arrived = [0], Queue(pending=3), asyncio.Event()

        async def slow_feeder() -> None:  # a busy loop: each record takes many turns
            while queue.pending:
                for _ in range(10):
                    await asyncio.sleep(0)
                queue.pending -= 1
                buffer.append(len(buffer))
                arrived.set()

        fed = asyncio.ensure_future(slow_feeder())
        await _gather_pending(buffer, asyncio.Event(), queue, loop.time() + 10.0, arrived)
        await fed
        return buffer

    assert asyncio.run(run()) == [0, 1, 2, 3]
