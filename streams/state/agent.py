"""The state agent: one actor per partition of ``events-by-user``.

Per micro-batch: read every touched user once (one RocksDB multi-get), apply the events,
fold them into the partition's trending board, erase users who asked for it, score every
touched user in one model call, and emit one recommendation per user; then write all state
with one RocksDB write batch and produce the changelog and recommendation records as record
batches, awaiting their delivery before the micro-batch counts as done. A slice of the
partition is swept for users past their inactivity TTL on the way.

All events of a micro-batch come from one partition (``isolated_partitions=True``), and all
state it writes goes to that partition's RocksDB database and changelog partition — the
ones Faust recovers and replicates for the users that partition owns (see DESIGN.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import EventT

from schemas.errors import SchemaViolationError
from streams.candidates.session import candidates_for
from streams.clock import now_ms
from streams.emit.recommendation import build_emission
from streams.ingest.batch import decode_bundle
from streams.kafka.batch_producer import PartitionBatches
from streams.kafka.partitioning import user_partition
from streams.ops.metrics import Metrics
from streams.ranking.layer import observe_ranking
from streams.ranking.rules import RuleSet
from streams.scoring.scorer import (
    FALLBACK_SCORING_ERROR,
    TEXT_UNAVAILABLE,
    Scored,
    ScoringStage,
)
from streams.settings import Settings
from streams.state.batch import (
    BatchUpdate,
    UserRecord,
    apply_batch,
    read_record,
    update_trending,
)
from streams.state.bounds import DEFAULT_TRENDING_WEIGHTS, StateBounds, StateDecodeError
from streams.state.store import PartitionStore
from streams.state.tables import TRENDING_TABLE, USERS_TABLE
from streams.state.trending import TrendingBoard, top
from streams.state.user_state import Outcome, is_expired

log = logging.getLogger(__name__)

FAUST_INTERNAL_KEY_PREFIX = b"__faust"
TTL_SWEEP_MIN_USERS = 8
TTL_SWEEP_MAX_USERS = 64
"""Each micro-batch looks at as many stored users as it has events, within these bounds:
the sweep keeps pace with traffic (every user is looked at once per ``stored users / event
rate`` seconds) and a trickle of tiny batches does not pay for a full sweep each time."""


@dataclass
class BatchOutput:
    """Everything one micro-batch writes: state changes and records to produce."""

    user_changes: dict[bytes, bytes | None] = field(default_factory=dict)
    board_changes: dict[bytes, bytes | None] = field(default_factory=dict)
    recommendations: list[tuple[str, bytes | None]] = field(default_factory=list)
    trigger_times_ms: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class StateConfig:
    """What the state agent needs to know, taken from the settings once."""

    batch_max_events: int
    batch_max_seconds: float
    top_k: int
    exclude_recent: bool
    trending_half_life_s: float
    trending_capacity: int
    explain: bool = True
    exclude_purchased_days: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> StateConfig:
        return cls(
            batch_max_events=settings.batch_max_events,
            batch_max_seconds=settings.batch_max_seconds,
            top_k=settings.top_k,
            exclude_recent=settings.exclude_recent,
            trending_half_life_s=settings.trending_half_life_s,
            trending_capacity=settings.trending_capacity,
            explain=settings.explain,
            exclude_purchased_days=settings.exclude_purchased_days,
        )


@dataclass
class StateAgent:
    config: StateConfig
    bounds: StateBounds
    metrics: Metrics
    users: Any
    """faust Table: user_id (bytes) -> UserRecord bytes."""
    trending: Any
    """faust Table: "p<partition>" -> TrendingBoard bytes."""
    scoring: ScoringStage
    producer: Any
    """The Faust app's producer; records go out below its per-message API."""
    recommendations_topic: str
    purchase_window: Callable[[], RuleSet] | None = None
    """The rules in force (their ``exclude_purchased`` rule sets how long a purchase keeps an
    item out of the buyer's list; else ``exclude_purchased_days``)."""
    sweep_cursors: dict[int, bytes] = field(default_factory=dict)
    recommendation_partitions: int = 0
    boards: dict[int, tuple[bytes, TrendingBoard]] = field(default_factory=dict)
    """Per partition, the board's stored bytes and the board decoded from them: decoding a
    full board costs more than a small micro-batch, and the stored bytes say when the cache
    is stale (e.g. the partition was recovered from its changelog meanwhile)."""

    async def __call__(self, stream: faust.StreamT) -> None:
        config = self.config
        # A bundle already holds up to batch_max_events events.
        async for events in stream.take_events(  # type: ignore[attr-defined]  # on faust.Stream, not StreamT
            max(1, config.batch_max_events // 10), config.batch_max_seconds
        ):
            await self.process(events)

    async def process(self, events: Sequence[EventT]) -> None:
        metrics = self.metrics
        started = time.perf_counter()
        partition = events[-1].message.partition
        users = PartitionStore(self.users, partition)
        trending = PartitionStore(self.trending, partition)
        bundles = [decode_bundle(event.value) for event in events]
        decoded = [ev for bundle in bundles for ev in bundle.events]
        erasures = {user for bundle in bundles for user in bundle.erasures}

        touched = list(dict.fromkeys(event.user_id for event in decoded))
        stored = dict(zip(touched, users.get_many([u.encode() for u in touched]), strict=True))
        update = apply_batch(
            decoded,
            lambda user: read_record(
                stored[user], lambda exc: self._discarded(USERS_TABLE, partition, exc)),
            self.bounds,
        )
        output = BatchOutput()
        board = self._update_board(trending, update, output)
        for user in erasures:
            update.users.pop(user, None)
            output.user_changes[user.encode("utf-8")] = None
            output.recommendations.append((user, None))
        await self._score_and_emit(update, board, output)
        self._sweep_expired(users, output, len(decoded))

        users.write(output.user_changes)
        if output.board_changes:
            trending.write(output.board_changes)
        await self._produce(users, trending, output)

        metrics.users_erased.inc(len(erasures))
        metrics.duplicates_dropped.inc(update.outcomes[Outcome.DUPLICATE])
        metrics.late_events.inc(update.outcomes[Outcome.LATE])
        metrics.batch_size.observe(len(decoded))
        metrics.batch_processing_seconds.observe(time.perf_counter() - started)
        log.debug("partition %d: %d events, %d users, %d erased in %.1f ms", partition,
                  len(decoded), len(update.users), len(erasures),
                  (time.perf_counter() - started) * 1000)

    def _update_board(
        self, store: PartitionStore, update: BatchUpdate, output: BatchOutput
    ) -> TrendingBoard:
        config = self.config
        key = f"p{store.partition}".encode()
        (stored,) = store.get_many([key])
        cached = self.boards.get(store.partition)
        if not stored:
            board = TrendingBoard.empty(config.trending_half_life_s)
        elif cached is not None and cached[0] == stored:
            board = cached[1]
        else:
            try:
                board = TrendingBoard.from_bytes(stored)
            except StateDecodeError as exc:
                self._discarded(TRENDING_TABLE, store.partition, exc)
                board = TrendingBoard.empty(config.trending_half_life_s)
                output.board_changes[key] = stored = board.to_bytes()
        if update.fresh_events:
            board = update_trending(board, update.fresh_events, DEFAULT_TRENDING_WEIGHTS,
                                    config.trending_half_life_s, config.trending_capacity)
            stored = board.to_bytes()
            output.board_changes[key] = stored
        if stored:
            self.boards[store.partition] = (stored, board)
        return board

    async def _score_and_emit(
        self, update: BatchUpdate, board: TrendingBoard, output: BatchOutput
    ) -> None:
        config, metrics = self.config, self.metrics
        days = config.exclude_purchased_days
        if self.purchase_window is not None:  # a live exclude_purchased rule wins
            days = self.purchase_window().exclude_purchased_days(days)
        candidates = {
            user: candidates_for(record.state, exclude_recent=config.exclude_recent,
                                 exclude_purchased_days=days)
            for user, record in update.users.items()
        }
        generated = now_ms()
        scored, report = await self.scoring.score(
            candidates, board, k=config.top_k, now_ms=generated)
        if report.users_scored:
            metrics.scoring_batch_seconds.observe(report.seconds)
            metrics.scoring_batch_users.observe(report.users_scored)
        if report.without_text:
            metrics.fallbacks.labels(reason=TEXT_UNAVAILABLE).inc(report.without_text)
        if report.layer_report is not None:
            observe_ranking(metrics, report.layer_report)
        model = self.scoring.model
        for user, record in update.users.items():
            try:
                emission = build_emission(
                    user, record.state, scored[user], model=model, generated_at_ms=generated,
                    explain=config.explain)
            except SchemaViolationError:  # e.g. a model that returned a NaN score
                log.exception("model output for a user broke the recommendation schema")
                fallback = Scored(
                    top(board, config.top_k, generated, candidates[user].exclude),
                    FALLBACK_SCORING_ERROR,
                )
                emission = build_emission(
                    user, record.state, fallback, model=None, generated_at_ms=generated
                )
            output.user_changes[emission.key] = UserRecord(
                record.state, emission.value).to_bytes()
            output.recommendations.append((user, emission.value))
            output.trigger_times_ms.append(emission.trigger_time_ms)
            if emission.fallback:
                metrics.fallbacks.labels(reason=emission.fallback).inc()

    def _sweep_expired(self, store: PartitionStore, output: BatchOutput, events: int) -> None:
        """Look at the next few users of this partition; expire those past the TTL."""
        budget = min(max(events, TTL_SWEEP_MIN_USERS), TTL_SWEEP_MAX_USERS)
        now, bounds = now_ms(), self.bounds
        cursor = self.sweep_cursors.get(store.partition, b"")
        seen, expired = 0, 0
        iterator = store.iterate_from(cursor)
        for key, value in iterator:
            if key.startswith(FAUST_INTERNAL_KEY_PREFIX) or key in output.user_changes:
                continue
            seen += 1
            # An undecodable record is left in place, and not counted here (the sweep passes
            # it again and again): the user's next event counts and replaces it, and until
            # then a rebuild from the changelog can still restore it.
            record = read_record(value, lambda exc: None)
            if record is not None and is_expired(record.state, now, bounds):
                output.user_changes[key] = None
                output.recommendations.append((key.decode("utf-8"), None))
                expired += 1
            if seen >= budget:
                break
        self.sweep_cursors[store.partition] = iterator.next_key()
        if expired:
            self.metrics.users_expired.inc(expired)

    def _discarded(self, table: str, partition: int, exc: StateDecodeError) -> None:
        # No key in the message: user ids never appear in logs at INFO or above.
        self.metrics.state_records_discarded.labels(table=table).inc()
        log.error("table %s partition %d: discarded a stored record that cannot be decoded "
                  "(%s); it reads as absent until that key is written afresh. More than a "
                  "few mean a corrupt RocksDB directory or a downgrade: see RUNBOOK "
                  "StreamrecStateRecordsDiscarded.",
                  table, partition, exc)

    async def _produce(
        self, users: PartitionStore, trending: PartitionStore, output: BatchOutput
    ) -> None:
        producer = self.producer._ensure_producer()  # noqa: SLF001
        if not self.recommendation_partitions:
            self.recommendation_partitions = len(
                await producer.partitions_for(self.recommendations_topic))
        changelog = PartitionBatches(producer, users.changelog_topic)
        for key, value in output.user_changes.items():
            changelog.add(users.partition, key, value)
        board_log = PartitionBatches(producer, trending.changelog_topic)
        for key, value in output.board_changes.items():
            board_log.add(trending.partition, key, value)
        recommendations = PartitionBatches(producer, self.recommendations_topic)
        for user, value in output.recommendations:
            recommendations.add(user_partition(user, self.recommendation_partitions),
                                user.encode("utf-8"), value)
        for batches in (changelog, board_log, recommendations):
            await batches.send()
        for delivered in await changelog.delivered():
            users.persist_changelog_offset(delivered.last_offset)
        for delivered in await board_log.delivered():
            trending.persist_changelog_offset(delivered.last_offset)
        await recommendations.delivered()
        emitted_at = now_ms()
        metrics = self.metrics
        for trigger_ms in output.trigger_times_ms:
            metrics.freshness_seconds.observe(max(0.0, (emitted_at - trigger_ms) / 1000.0))
        metrics.recommendations_emitted.inc(len(output.trigger_times_ms))
