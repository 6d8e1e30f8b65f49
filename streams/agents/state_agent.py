"""The state agent: one actor per partition of ``events-by-user``.

Per micro-batch: apply events to the users they touch (one read and one write per user),
fold them into the partition's trending board, erase users who asked for it, score every
touched user in one model call, emit one recommendation per user, and sweep a slice of the
partition for users past their inactivity TTL.

Every table write happens while the current Faust event is one of the batch's own events,
and all of them come from one partition (``isolated_partitions=True``), so state lands in
the RocksDB database and changelog partition that own the user (see DESIGN.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import faust
from faust.types import EventT

from streams.candidates import candidates_for
from streams.clock import now_ms
from streams.emit import build_emission
from streams.ingest import decode_bundle
from streams.scoring import score_users
from streams.state.batch import BatchUpdate, UserRecord, apply_batch, update_trending
from streams.state.trending import TrendingBoard
from streams.state.user_state import Outcome, is_expired

if TYPE_CHECKING:
    from streams.app import Worker

log = logging.getLogger(__name__)

TRENDING_WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}
FAUST_INTERNAL_KEY_PREFIX = b"__faust"
TTL_SWEEP_USERS_PER_BATCH = 64


@dataclass
class StateAgent:
    worker: Worker
    recommendations_topic: Any
    sweep_cursors: dict[int, bytes] = field(default_factory=dict)

    async def __call__(self, stream: faust.StreamT) -> None:
        settings = self.worker.settings
        # A bundle already holds up to batch_max_events events.
        async for events in stream.take_events(
            max(1, settings.batch_max_events // 10), settings.batch_max_seconds
        ):
            # Table writes need a current event: make it the batch's newest event.
            stream._set_current_event(events[-1])  # noqa: SLF001 - see module docstring
            await self.process(events)

    async def process(self, events: Sequence[EventT]) -> None:
        worker, metrics = self.worker, self.worker.metrics
        started = time.perf_counter()
        partition = events[-1].message.partition
        bundles = [decode_bundle(event.value) for event in events]
        decoded = [ev for bundle in bundles for ev in bundle.events]
        erasures = {user for bundle in bundles for user in bundle.erasures}

        update = apply_batch(decoded, self._load_user, worker.bounds)
        board = self._update_board(partition, update)
        for user in erasures:
            update.users.pop(user, None)
            await self._erase(user)
            metrics.users_erased.inc()
        metrics.duplicates_dropped.inc(update.outcomes[Outcome.DUPLICATE])
        metrics.late_events.inc(update.outcomes[Outcome.LATE])

        await self._score_and_emit(update, board)
        await self._sweep_expired(partition)
        metrics.batch_size.observe(len(decoded))
        metrics.batch_processing_seconds.observe(time.perf_counter() - started)
        log.debug("partition %d: %d events, %d users, %d erased in %.1f ms", partition,
                  len(decoded), len(update.users), len(erasures),
                  (time.perf_counter() - started) * 1000)

    def _load_user(self, user_id: str) -> UserRecord | None:
        stored = self.worker.users.get(user_id.encode("utf-8"))
        return UserRecord.from_bytes(stored) if stored else None

    def _update_board(self, partition: int, update: BatchUpdate) -> TrendingBoard:
        settings = self.worker.settings
        key = f"p{partition}".encode()
        stored = self.worker.trending.get(key)
        board = (
            TrendingBoard.from_bytes(stored) if stored
            else TrendingBoard.empty(settings.trending_half_life_s)
        )
        if update.fresh_events:
            board = update_trending(board, update.fresh_events, TRENDING_WEIGHTS,
                                    settings.trending_half_life_s, settings.trending_capacity)
            self.worker.trending[key] = board.to_bytes()
        return board

    async def _score_and_emit(self, update: BatchUpdate, board: TrendingBoard) -> None:
        worker, settings, metrics = self.worker, self.worker.settings, self.worker.metrics
        candidates = {
            user: candidates_for(record.state, exclude_recent=settings.exclude_recent)
            for user, record in update.users.items()
        }
        generated = now_ms()
        scored, report = score_users(
            candidates, worker.scorer, board, k=settings.top_k, now_ms=generated
        )
        if report.users_scored:
            metrics.scoring_batch_seconds.observe(report.seconds)
            metrics.scoring_user_seconds.observe(report.seconds / report.users_scored)
        model = (worker.scorer.name, worker.scorer.version) if worker.scorer else None
        for user, record in update.users.items():
            emission = build_emission(
                user, record.state, scored[user], model=model, generated_at_ms=generated
            )
            worker.users[emission.key] = UserRecord(record.state, emission.value).to_bytes()
            await self.recommendations_topic.send(key=emission.key, value=emission.value)
            if emission.fallback:
                metrics.fallbacks.labels(reason=emission.fallback).inc()
            metrics.freshness_seconds.observe(
                max(0.0, (now_ms() - emission.trigger_time_ms) / 1000.0)
            )
        metrics.recommendations_emitted.inc(len(update.users))

    async def _erase(self, user_id: str) -> None:
        """Delete the user's state (changelog tombstone) and last recommendation
        (tombstone on the recommendations topic)."""
        key = user_id.encode("utf-8")
        if self.worker.users.get(key) is not None:
            del self.worker.users[key]
        await self.recommendations_topic.send(key=key, value=None)

    async def _sweep_expired(self, partition: int) -> None:
        """Look at the next few users of this partition; expire those past the TTL."""
        store = self.worker.users.data
        db = store._db_for_partition(partition)  # noqa: SLF001 - per-partition RocksDB
        cursor = self.sweep_cursors.get(partition, b"")
        iterator = db.iter()
        iterator.seek(cursor)
        now, bounds = now_ms(), self.worker.bounds
        expired: list[bytes] = []
        seen = 0
        while iterator.valid() and seen < TTL_SWEEP_USERS_PER_BATCH:
            key, value = iterator.key(), iterator.value()
            iterator.next()
            if key.startswith(FAUST_INTERNAL_KEY_PREFIX) or value is None:
                continue
            seen += 1
            if is_expired(UserRecord.from_bytes(value).state, now, bounds):
                expired.append(key)
        self.sweep_cursors[partition] = iterator.key() if iterator.valid() else b""
        for key in expired:
            del self.worker.users[key]
            await self.recommendations_topic.send(key=key, value=None)
        if expired:
            self.worker.metrics.users_expired.inc(len(expired))
