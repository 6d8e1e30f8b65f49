"""Adaptive micro-batches: Faust's ``Stream.take_events`` without waiting when idle.

``take_events(max_, within)`` returns a batch when it holds ``max_`` events or when
``within`` seconds have passed since the last batch — so an idle stream's first event
waits out most of ``within`` (10 ms by default). The ingest agent uses
:func:`take_adaptive`, which yields a batch as soon as nothing more is pending for the
actor: its channel's queue (the
records already fetched for its partition) is empty and the buffer stopped growing. An idle
stream gets batches of one event at once; a backlog fills batches up to ``max_`` (or for at
most ``within``), as before.

Acks are as with ``take_events``: a batch's events are acked once the body of the ``async
for`` that received it has finished (so, for the agents, once its state, changelog and
recommendations are acknowledged). It uses the stream's own machinery the way
``take_events`` does (faust-streaming 0.15, ``streams.py``): a processor that fills the
buffer, the passive drainer, manual acks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from faust.types import EventT
from mode.utils.futures import notify

Take = Callable[[Any, int, float], AsyncIterator[list[EventT]]]
"""How an agent gets its micro-batches from its stream (``max_``, ``within``)."""

STOP_CHECK_S = 0.5
"""Longest an idle stream's loop sleeps before it looks at ``should_stop`` again (a
stopping worker cancels the agent's task first, so this is only the fallback)."""
MAX_IDLE_TURNS = 2
"""Event-loop turns without a new event (and an empty queue) after which a non-empty batch
is yielded: the hand-off from the channel's queue to the buffer takes a turn or two."""


async def take_adaptive(stream: Any, max_: int, within: float
                        ) -> AsyncIterator[list[EventT]]:
    """Batches of ``stream``'s events: at most ``max_``, yielded once nothing more is
    pending or ``within`` seconds after the batch's first event, whichever is first."""
    loop = asyncio.get_running_loop()
    buffer: list[EventT] = []
    arrived = asyncio.Event()
    full = asyncio.Event()
    consumed = asyncio.Event()
    consuming: asyncio.Future[None] | None = None

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming
        try:
            if consuming is not None:  # a batch is being processed: wait for its end
                try:
                    await consuming
                finally:
                    consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("take_adaptive found no current event")
            buffer.append(event)
            arrived.set()
            if len(buffer) >= max_:
                full.set()
                consumed.clear()
                await stream.wait(consumed)  # never more than max_ in a batch
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # as take_events: the stream crashes, the agent restarts
            stream.log.exception("Error adding to take buffer: %r", exc)
            await stream.crash(exc)
        return value

    enable_acks = stream.enable_acks
    stream.enable_acks = False
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))  # noqa: SLF001
    queue = stream.channel.queue
    try:
        while not stream.should_stop:
            if not arrived.is_set():
                await _wait_set(arrived, STOP_CHECK_S)
            if not buffer:
                continue
            await _gather_pending(buffer, full, queue, loop.time() + within, arrived)
            consuming = loop.create_future()
            try:
                yield list(buffer)
            finally:
                events = list(buffer)
                buffer.clear()
                for event in events:
                    await stream.ack(event)
                arrived.clear()
                full.clear()
                notify(consuming)
                consumed.set()
    finally:  # as take_events: the stream as it was
        stream.enable_acks = enable_acks
        stream._processors.remove(add_to_buffer)  # noqa: SLF001


async def _wait_set(event: asyncio.Event, timeout: float) -> None:
    """Until ``event`` is set or ``timeout`` passed. Not ``stream.wait_for_stopped``: mode
    makes three tasks per call for it (4 % of a busy worker's CPU in py-spy, 2026-12-08);
    a stopping agent cancels this task anyway, and the caller looks at ``should_stop``
    after every wake."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return


async def _gather_pending(buffer: list[EventT], full: asyncio.Event, queue: Any,
                          deadline: float, arrived: asyncio.Event) -> None:
    """Let the stream move what is already fetched into ``buffer``: return when it is
    full, when the deadline passed, or when the queue is empty and nothing came in for
    :data:`MAX_IDLE_TURNS` loop turns. Records pending that do not arrive within those
    turns (the stream is busy elsewhere) are waited for on ``arrived``, which the stream
    sets per record added, not by spinning the loop until the deadline."""
    loop = asyncio.get_running_loop()
    idle_turns, seen = 0, len(buffer)
    while not full.is_set() and loop.time() < deadline:
        if idle_turns >= MAX_IDLE_TURNS:  # pending, but not coming: wait, do not spin
            arrived.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await arrived.wait()
            except TimeoutError:
                return
        else:
            await asyncio.sleep(0)
        if len(buffer) > seen:
            idle_turns, seen = 0, len(buffer)
        elif queue.empty():
            idle_turns += 1
            if idle_turns >= MAX_IDLE_TURNS:
                return
        else:
            idle_turns = min(idle_turns + 1, MAX_IDLE_TURNS)


def take_events(stream: Any, max_: int, within: float) -> AsyncIterator[list[EventT]]:
    """Faust's own ``take_events``: the state agent's batches. With :func:`take_adaptive`
    there, a state actor that crashed on a broker error (after a broker restart) took the
    next batch and crashed again at once, four times in 0.1 s, until Faust's supervisor gave
    up and the worker exited (tests/integration/test_broker_outage.py)."""
    return stream.take_events(max_, within)
