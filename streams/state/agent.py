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

The ingest agent applies events that arrived in the partition owning their user through
:meth:`StateAgent.apply_direct`, without the hop (:mod:`streams.ingest.agent`). One lock per
partition keeps the two ways from working on one partition at once: a micro-batch reads,
scores and writes its users with no other micro-batch of that partition in between, however
it came.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.types import EventT

from schemas.control import Experiment
from schemas.errors import SchemaViolationError
from schemas.events import Event
from schemas.feedback import Attribution, Served, encode_feedback
from schemas.recommendations import recommendation_id_for
from streams.attribution.ledger import Ledger, Shown
from streams.attribution.match import AttributionWindows, Credit, attribute, replay
from streams.candidates.session import Candidates, candidates_for
from streams.clock import now_ms
from streams.emit.recommendation import Emission, build_emission
from streams.ingest.batch import Bundle, decode_bundle
from streams.kafka.batch_producer import PartitionBatches
from streams.kafka.partitioning import user_partition
from streams.kafka.take import Take, take_events
from streams.ops.metrics import Metrics
from streams.ops.stages import SCORING_WAIT, StageClock, observe_waits
from streams.ranking.layer import observe_ranking
from streams.ranking.rules import RuleSet
from streams.scoring.guard import GuardRail, Verdict
from streams.scoring.plan import Arm
from streams.scoring.scorer import (
    FALLBACK_SCORING_ERROR,
    FALLBACK_UNKNOWN_ITEMS,
    TEXT_UNAVAILABLE,
    Scored,
    ScoringReport,
    ScoringStage,
)
from streams.settings import Settings
from streams.state.batch import (
    BatchUpdate,
    UserRecord,
    apply_batch,
    group_by_user,
    read_record,
    update_trending,
)
from streams.state.bounds import DEFAULT_TRENDING_WEIGHTS, StateBounds, StateDecodeError
from streams.state.store import PartitionStore
from streams.state.tables import TRENDING_TABLE, USERS_TABLE
from streams.state.trending import TrendingBoard, top
from streams.state.user_state import Outcome, is_expired_at

log = logging.getLogger(__name__)

FAUST_INTERNAL_KEY_PREFIX = b"__faust"
RETRY_FIRST_DELAY_S = 0.05
RETRY_MAX_DELAY_S = 2.0
RETRY_WINDOW_S = 60.0
"""A micro-batch whose records the broker refuses (a ``KafkaError``, e.g. just after a
broker restart) is applied again after 0.05, 0.1, 0.2 ... 2 s, for up to a minute, before
its error goes up (and Faust's supervisor restarts the actor). Crashing at once instead had
the actor take the next batch, fail the same way and spend the supervisor's restart budget
in a tenth of a second: the worker exited (tests/integration/test_broker_outage.py)."""
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
    feedback: list[tuple[str, bytes]] = field(default_factory=list)
    """(user, encoded record) for the feedback topic: served records and attributions."""
    shadow: list[tuple[str, bytes]] = field(default_factory=list)
    """(user, encoded recommendation) the shadow variant made."""


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
    attribution_windows: AttributionWindows = field(default_factory=AttributionWindows)
    ledger_size: int = 8
    feedback_topic: str = "streamrec.feedback"
    shadow_topic: str = "recommendations.shadow"

    @classmethod
    def from_settings(cls, settings: Settings) -> StateConfig:
        return cls(
            attribution_windows=AttributionWindows.from_settings(settings),
            ledger_size=settings.attribution_ledger_size,
            feedback_topic=settings.topic_feedback,
            shadow_topic=settings.topic_shadow,
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
    guard: GuardRail | None = None
    """Compares each variant's failures with the control's (None: no guard rail)."""
    roll_back: Callable[[Experiment, Verdict], Awaitable[None]] | None = None
    """Ends an experiment the guard rail condemned (on this worker and the control topic)."""
    sweep_cursors: dict[int, bytes] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)
    """Partitions per output topic, asked once."""
    boards: dict[int, tuple[bytes, TrendingBoard]] = field(default_factory=dict)
    """Per partition, the board's stored bytes and the board decoded from them: decoding a
    full board costs more than a small micro-batch, and the stored bytes say when the cache
    is stale (e.g. the partition was recovered from its changelog meanwhile)."""
    locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    """Per partition: held by whichever micro-batch (re-keyed or direct) works on it."""
    take: Take = take_events
    """Micro-batches of the stream (:mod:`streams.kafka.take`)."""
    waiting: dict[int, list[tuple[list[Event], asyncio.Future[None]]]] = field(
        default_factory=dict)
    """Per partition: direct events queued for the lock, and who waits for them."""

    async def __call__(self, stream: faust.StreamT) -> None:
        config = self.config
        # A bundle already holds up to batch_max_events events.
        async for events in self.take(stream, max(1, config.batch_max_events // 10),
                                      config.batch_max_seconds):
            await self.process(events)

    async def process(self, events: Sequence[EventT]) -> None:
        """One micro-batch of ``events-by-user`` records (bundles), all of one partition."""
        await self.scoring.wait_serving()  # at start-up: know which model serves first
        partition = events[-1].message.partition
        async with self._lock(partition):
            started = time.perf_counter()
            observe_waits(self.metrics.stage_seconds, "rekey_hop", now_ms(),
                          [_timestamp_ms(event) for event in events])
            await self._apply_retrying(
                partition, [decode_bundle(event.value) for event in events], started)

    async def apply_direct(self, partition: int, events: list[Event]) -> None:
        """Events that arrived in the input partition owning their users, applied to that
        partition by the ingest actor (no re-key hop): the same micro-batch as
        :meth:`process`'s, under the same lock. The wait for the lock counts as ``state``.

        Each input topic's actor calls this for its own events; those that queue for the
        lock meanwhile are applied together, as one micro-batch, by whichever gets the lock
        first (the others return when it is written and acknowledged, or raise its error):
        under load the partition's work stays in few micro-batches, as through the hop."""
        await self.scoring.wait_serving()
        started = time.perf_counter()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(partition, []).append((events, done))
        async with self._lock(partition):
            if not done.done():
                await self._apply_waiting(partition, started)
        await done  # raises the error of the micro-batch that took these events

    async def _apply_waiting(self, partition: int, started: float) -> None:
        """One micro-batch of every direct event waiting for ``partition``; its outcome
        goes to each waiter's future (the callers raise an error there, not here)."""
        taken = self.waiting.pop(partition, [])
        try:
            await self._apply_retrying(
                partition, [Bundle(events=events) for events, _ in taken], started)
        except asyncio.CancelledError:  # the worker stops: so do the waiters
            for _, done in taken:
                done.cancel()
            raise
        except Exception as exc:  # noqa: BLE001  # handed to every waiter, raised there
            for _, done in taken:
                done.set_exception(exc)
            return
        for _, done in taken:
            done.set_result(None)

    async def _apply_retrying(self, partition: int, bundles: list[Bundle], started: float
                              ) -> None:
        """:meth:`_apply`, again while the broker refuses the records (see
        :data:`RETRY_WINDOW_S`). Safe: the state a refused attempt wrote makes its events
        duplicates the next time, which rewrites and re-announces every touched user (and
        the attributions their interactions earned) — the at-least-once path of a crash."""
        delay, deadline = RETRY_FIRST_DELAY_S, time.monotonic() + RETRY_WINDOW_S
        while True:
            try:
                await self._apply(partition, bundles, started)
                return
            except KafkaError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                self.metrics.state_batch_retries.inc()
                log.warning("partition %d: the broker refused a micro-batch's records (%r); "
                            "applying it again in %.2f s", partition, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY_S)

    def _lock(self, partition: int) -> asyncio.Lock:
        lock = self.locks.get(partition)
        if lock is None:
            lock = self.locks[partition] = asyncio.Lock()
        return lock

    async def _apply(self, partition: int, bundles: list[Bundle], started: float) -> None:
        metrics = self.metrics
        clock = StageClock(started)
        users = PartitionStore(self.users, partition)
        trending = PartitionStore(self.trending, partition)
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
        clock.lap("state")
        await self._score_and_emit(update, board, output, clock)
        self._sweep_expired(users, output, len(decoded))

        users.write(output.user_changes)
        if output.board_changes:
            trending.write(output.board_changes)
        clock.lap("state")
        await self._produce(users, trending, output)
        clock.lap("produce")
        clock.observe(metrics.stage_seconds)

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
        elif update.replayed_events and stored:
            # A replay (crash or retry after the local write): the board's changelog record
            # may be what was lost, and its update is not fresh any more: write it again.
            output.board_changes[key] = stored
        if stored:
            self.boards[store.partition] = (stored, board)
        return board

    async def _score_and_emit(
        self, update: BatchUpdate, board: TrendingBoard, output: BatchOutput,
        clock: StageClock | None = None,
    ) -> None:
        clock = clock or StageClock()
        config, metrics = self.config, self.metrics
        fresh = group_by_user(update.fresh_events)
        replayed = group_by_user(update.replayed_events)
        days = config.exclude_purchased_days
        if self.purchase_window is not None:  # a live exclude_purchased rule wins
            days = self.purchase_window().exclude_purchased_days(days)
        candidates = {
            user: candidates_for(record.state, exclude_recent=config.exclude_recent,
                                 exclude_purchased_days=days)
            for user, record in update.users.items()
        }
        generated = now_ms()
        plan = self.scoring.plan()  # one plan for the whole micro-batch: swaps fall between
        scored: dict[str, Scored] = {}
        arm_of: dict[str, Arm] = {}
        for arm, users in plan.route(candidates).items():
            part, report = await self.scoring.score(
                {user: candidates[user] for user in users}, arm.scorer, board,
                k=config.top_k, now_ms=generated, with_content=not arm.is_trending_baseline)
            self._observe_scoring(report)
            scored.update(part)
            arm_of.update(dict.fromkeys(users, arm))
        if plan.shadow is not None:
            await self._shadow(plan.shadow, candidates, board, scored, update, generated,
                               output)
        clock.lap("scoring")
        failures: dict[Arm, list[int]] = {}
        for user, record in update.users.items():
            arm = arm_of[user]
            emission = self._emission(user, record, scored[user], arm, candidates[user],
                                      board, generated)
            ledger = self._attribute(user, record.ledger, fresh.get(user, ()), output,
                                     replayed.get(user, ()))
            ledger = self._remember(ledger, emission, arm, scored[user], generated)
            output.user_changes[emission.key] = UserRecord(
                record.state, emission.value, ledger).to_bytes()
            output.recommendations.append((user, emission.value))
            output.trigger_times_ms.append(emission.trigger_time_ms)
            if emission.fallback:
                metrics.fallbacks.labels(reason=emission.fallback).inc()
            counts = failures.setdefault(arm, [0, 0])
            counts[0] += 1
            counts[1] += emission.fallback in (FALLBACK_SCORING_ERROR, FALLBACK_UNKNOWN_ITEMS)
            if arm.experiment is not None:
                output.feedback.append((user, encode_feedback(Served(
                    recommendation_id=emission.recommendation_id, user_id=user,
                    experiment=arm.experiment, variant=arm.variant,
                    model_name=emission.model[0], model_version=emission.model[1],
                    items=len(scored[user].items), generated_at_ms=generated))[1]))
        for arm, (sent, failed) in failures.items():
            metrics.variant_recommendations.labels(*arm.labels).inc(sent)
            if failed:
                metrics.variant_failures.labels(*arm.labels).inc(failed)
            if self.guard is not None and arm.experiment is not None and arm.variant:
                self.guard.observe(arm.experiment, arm.variant, sent, failed)
        clock.lap("emit")
        await self._judge(plan.experiment)

    def _observe_scoring(self, report: ScoringReport) -> None:
        metrics = self.metrics
        metrics.stage_seconds.labels(stage=SCORING_WAIT).observe(report.waited_seconds)
        if report.users_scored:
            metrics.scoring_batch_seconds.observe(report.seconds)
            metrics.scoring_batch_users.observe(report.users_scored)
        if report.without_text:
            metrics.fallbacks.labels(reason=TEXT_UNAVAILABLE).inc(report.without_text)
        if report.layer_report is not None:
            observe_ranking(metrics, report.layer_report)

    def _emission(self, user: str, record: UserRecord, scored: Scored, arm: Arm,
                  candidates: Candidates, board: TrendingBoard, generated: int) -> Emission:
        """The recommendation message; a model output that breaks the schema (e.g. a NaN
        score) is replaced by trending, marked ``scoring_error``."""
        config = self.config
        model = arm.model
        state = record.state
        # The same state re-announced (a batch redelivered after a crash) keeps its id.
        rid = recommendation_id_for(user, state.newest_event.event_id,
                                    str(state.events_applied))
        try:
            return build_emission(user, state, scored, model=model, generated_at_ms=generated,
                                  explain=config.explain, recommendation_id=rid,
                                  experiment=arm.experiment_ref)
        except SchemaViolationError:
            log.exception("model output for a user broke the recommendation schema")
            fallback = Scored(top(board, config.top_k, generated, candidates.exclude),
                              FALLBACK_SCORING_ERROR)
            return build_emission(user, state, fallback, model=None, generated_at_ms=generated,
                                  recommendation_id=rid, experiment=arm.experiment_ref)

    def _attribute(self, user: str, ledger: Ledger, events: Sequence[Event],
                   output: BatchOutput, replayed: Sequence[Event] = ()) -> Ledger:
        """Credit this batch's clicks, carts and purchases to the recommendations that showed
        the items (judged against what was shown before this batch's new list). Replayed
        events announce their credits again, uncounted: the records may have been lost in a
        crash after the state was written (:func:`streams.attribution.match.replay`)."""
        windows = self.config.attribution_windows
        if replayed:
            for credit in replay(ledger, replayed, windows):
                output.feedback.append((user, encode_feedback(_attribution(user, credit))[1]))
        ledger, credits = attribute(ledger, events, windows)
        for credit in credits:
            output.feedback.append((user, encode_feedback(_attribution(user, credit))[1]))
            labels = (credit.shown.experiment or "none", credit.shown.variant or "none")
            self.metrics.attributed.labels(*labels, str(credit.event.event_type)).inc()
            if credit.revenue:
                self.metrics.attributed_revenue.labels(*labels).inc(credit.revenue)
        return ledger

    def _remember(self, ledger: Ledger, emission: Emission, arm: Arm, scored: Scored,
                  generated: int) -> Ledger:
        latest = ledger.latest()
        if latest is not None and latest.recommendation_id == emission.recommendation_id:
            return ledger  # re-announced: keep what was shown first and what it earned
        return ledger.record(Shown(
            recommendation_id=emission.recommendation_id, generated_at_ms=generated,
            experiment=arm.experiment, variant=arm.variant, model_name=emission.model[0],
            model_version=emission.model[1], items=tuple(item for item, _ in scored.items),
        ), self.config.ledger_size)

    async def _shadow(self, arm: Arm, candidates: dict[str, Candidates], board: TrendingBoard,
                      live: dict[str, Scored], update: BatchUpdate, generated: int,
                      output: BatchOutput) -> None:
        """Score every user with the shadow variant too: its lists go to the shadow topic,
        never to users; its overlap with the live lists and its latency are metrics."""
        config, metrics = self.config, self.metrics
        started = time.perf_counter()
        shadow, _report = await self.scoring.score(
            candidates, arm.scorer, board, k=config.top_k, now_ms=generated,
            with_content=not arm.is_trending_baseline)
        metrics.shadow_scoring_seconds.observe(time.perf_counter() - started)
        for user, scored in shadow.items():
            live_items = {item for item, _ in live[user].items}
            if live_items:
                shared = sum(1 for item, _ in scored.items if item in live_items)
                metrics.shadow_overlap.observe(shared / len(live_items))
            state = update.users[user].state
            rid = recommendation_id_for(user, state.newest_event.event_id,
                                        f"{state.events_applied}:shadow:{arm.variant}")
            try:
                emission = build_emission(user, state, scored, model=arm.model,
                                          generated_at_ms=generated, explain=config.explain,
                                          recommendation_id=rid,
                                          experiment=arm.experiment_ref)
            except SchemaViolationError:
                log.warning("the shadow model's output broke the recommendation schema")
                continue
            output.shadow.append((user, emission.value))
        metrics.shadow_recommendations.inc(len(shadow))

    async def _judge(self, experiment: Experiment | None) -> None:
        if experiment is None or self.guard is None or self.roll_back is None:
            return
        verdict = self.guard.judge(experiment)
        if verdict is None:
            return
        log.error("experiment %s: %s; rolling it back (RUNBOOK StreamrecGuardRailRollback)",
                  experiment.name, verdict.reason(experiment.control.name))
        self.metrics.guard_rollbacks.labels(experiment.name, verdict.variant).inc()
        self.guard.forget(experiment.name)
        await self.roll_back(experiment, verdict)

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
            # Only the newest event's time is read. A record where that cannot be read is
            # left in place, and not counted here (the sweep passes it again and again): the
            # user's next event counts and replaces it, and until then a rebuild from the
            # changelog can still restore it.
            try:
                newest = UserRecord.newest_event_ms(value)
            except StateDecodeError:
                newest = None
            if newest is not None and is_expired_at(newest, now, bounds):
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
        changelog = PartitionBatches(producer, users.changelog_topic)
        for key, value in output.user_changes.items():
            changelog.add(users.partition, key, value)
        board_log = PartitionBatches(producer, trending.changelog_topic)
        for key, value in output.board_changes.items():
            board_log.add(trending.partition, key, value)
        keyed = [await self._by_user_key(producer, self.recommendations_topic,
                                         output.recommendations)]
        if output.feedback:
            keyed.append(await self._by_user_key(producer, self.config.feedback_topic,
                                                 output.feedback))
        if output.shadow:
            keyed.append(await self._by_user_key(producer, self.config.shadow_topic,
                                                 output.shadow))
        for batches in (changelog, board_log, *keyed):
            await batches.send()
        for delivered in await changelog.delivered():
            users.persist_changelog_offset(delivered.last_offset)
        for delivered in await board_log.delivered():
            trending.persist_changelog_offset(delivered.last_offset)
        for batches in keyed:
            await batches.delivered()
        emitted_at = now_ms()
        metrics = self.metrics
        for trigger_ms in output.trigger_times_ms:
            metrics.freshness_seconds.observe(max(0.0, (emitted_at - trigger_ms) / 1000.0))
        metrics.recommendations_emitted.inc(len(output.trigger_times_ms))

    async def _by_user_key(self, producer: Any, topic: str,
                           records: Sequence[tuple[str, bytes | None]]) -> PartitionBatches:
        """``records`` keyed by user id, in the user's partition of ``topic``."""
        count = self.partitions.get(topic)
        if count is None:
            count = self.partitions[topic] = len(await producer.partitions_for(topic))
        batches = PartitionBatches(producer, topic)
        for user, value in records:
            batches.add(user_partition(user, count), user.encode("utf-8"), value)
        return batches


def _timestamp_ms(event: EventT) -> int | None:
    """A bundle record's timestamp (when the ingest agent sent it), in ms."""
    stamp = event.message.timestamp
    return int(stamp * 1000) if stamp else None


def _attribution(user: str, credit: Credit) -> Attribution:
    shown = credit.shown
    return Attribution(
        recommendation_id=shown.recommendation_id, user_id=user, experiment=shown.experiment,
        variant=shown.variant, model_name=shown.model_name, model_version=shown.model_version,
        item_id=credit.item_id, position=credit.position,
        event_type=str(credit.event.event_type), event_id=credit.event.event_id,
        event_time_ms=credit.event.timestamp_ms, delay_ms=credit.delay_ms,
        revenue=credit.revenue, matched_by=credit.matched_by)
