"""The allocator tuning: glibc's arenas and free pages (this machine runs glibc)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.ops.memory import Allocator, register_memory_trim


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_trim_hands_freed_heap_pages_back() -> None:
    allocator = Allocator.load()
    assert allocator.libc is not None  # glibc, as on every supported Linux image
    blocks = [bytearray(4096) for _ in range(40_000)]  # 160 MiB of heap, not mmap'd
    pin = bytearray(4096)  # allocated last: the freed space is not at the heap's top
    del blocks
    before = _resident_bytes()
    assert allocator.release_free_memory()
    assert _resident_bytes() < before - 100 * 1024 * 1024
    del pin


def test_off_glibc_both_calls_say_they_did_nothing() -> None:
    allocator = Allocator(None)
    assert not allocator.tune()
    assert not allocator.release_free_memory()


class _TimerApp:
    def __init__(self) -> None:
        self.timers: list[tuple[float, Callable[[], Any]]] = []

    def timer(self, interval: float) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        def register(function: Callable[[], Any]) -> Callable[[], Any]:
            self.timers.append((interval, function))
            return function
        return register


def test_the_trim_timer_runs_only_when_asked_for() -> None:
    import asyncio

    app = _TimerApp()
    register_memory_trim(app, Allocator.load(), 0)
    register_memory_trim(app, Allocator(None), 30)
    assert app.timers == []
    register_memory_trim(app, Allocator.load(), 30)
    ((interval, trim),) = app.timers
    assert interval == 30
    asyncio.run(trim())
