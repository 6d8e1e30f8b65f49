"""Keep the worker's resident memory close to what it uses (glibc's allocator only).

Two ways glibc keeps a long-running, multi-threaded worker's RSS above its live data:

* the event loop, the scoring thread, ONNX Runtime's and RocksDB's threads each get a malloc
  arena of their own (up to eight per core), each keeping its freed space:
  :meth:`Allocator.tune` caps them at two;
* free chunks inside a heap are not handed back until they reach its top (loading a model
  leaves many): :meth:`Allocator.release_free_memory` (``malloc_trim``) returns them, every
  ``STREAMREC_MEMORY_TRIM_INTERVAL_S``.

Peak RSS of the benchmark's worker (``streamrec bench --events 30000 --runs 1 --workers ''
--key-by user --systems streamrec``), with the memtable and embedding-copy changes made at
the same time: 639-665 MiB before (three runs), 524 and 555 after (docs/performance.md).
Fixing glibc's mmap threshold as well took one run to 503 MiB, but at 2.1 CPU s per 1k
events against 1.3-1.5 (every large array mapped and zero-filled anew), so the threshold
stays dynamic.

On another C library (musl, macOS) both are no-ops that say so by returning False.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
from dataclasses import dataclass
from typing import Any, Final

log = logging.getLogger(__name__)

M_ARENA_MAX: Final = -8
"""The ``mallopt`` parameter (glibc ``malloc.h``)."""
ARENAS: Final = 2


@dataclass(frozen=True)
class Allocator:
    """glibc's malloc, when this process runs on it (``libc`` None: another C library)."""

    libc: Any | None

    @classmethod
    def load(cls) -> Allocator:
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.gnu_get_libc_version  # noqa: B018  # raises AttributeError off glibc
        except (OSError, AttributeError):
            return cls(None)
        return cls(libc)

    def tune(self) -> bool:
        """Cap malloc arenas at :data:`ARENAS` (call before threads start). Returns
        whether it applied."""
        if self.libc is None:
            log.info("not glibc: the allocator keeps its defaults")
            return False
        applied = self.libc.mallopt(M_ARENA_MAX, ARENAS) == 1
        if not applied:
            log.warning("mallopt refused a setting: the allocator keeps some of its defaults")
        return applied

    def release_free_memory(self) -> bool:
        """Hand free heap pages back to the system (``malloc_trim(0)``; a few ms on a
        worker's heap, the GIL released). Returns whether any memory was released."""
        return bool(self.libc.malloc_trim(0)) if self.libc is not None else False


def register_memory_trim(app: Any, allocator: Allocator, interval_s: float) -> None:
    """Release free heap pages every ``interval_s`` seconds (0: never), off the event
    loop (the call releases the GIL)."""
    if interval_s <= 0 or allocator.libc is None:
        return

    @app.timer(interval_s)
    async def release_free_memory() -> None:
        await asyncio.get_running_loop().run_in_executor(None, allocator.release_free_memory)
