"""The Faust application: wires the stages together. Read top to bottom, it is the flow.

    views / clicks / purchases ──► ingest agent (decode, validate, dead-letter, re-key)
        ──► events-by-user (one bundle per user partition per micro-batch)
        ──► state agent, one actor per partition:
              state (users table, trending table) → candidates → score → emit
        ──► recommendations (key = user_id)

Every table write happens inside the state agent while the current Faust event is one of the
batch's own events, so state lands in the RocksDB database and changelog partition of the
partition that owns the user (see DESIGN.md's pitfall).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import EventT
from prometheus_client import CollectorRegistry

from schemas.codecs import DecodeLimits, EventType, encode_dead_letter
from streams import __version__
from streams.candidates import candidates_for
from streams.emit import build_emission
from streams.ingest import (
    IngestBatch,
    Pseudonymiser,
    RawMessage,
    decode_bundle,
    encode_bundle,
    ingest,
)
from streams.kafka_clients import faust_credentials
from streams.metrics import Metrics, create_metrics
from streams.scoring import FALLBACK_REASONS, Scorer, score_users
from streams.settings import Settings
from streams.state.batch import UserRecord, apply_batch, update_trending
from streams.state.bounds import StateBounds
from streams.state.trending import TrendingBoard
from streams.state.user_state import Outcome

log = logging.getLogger(__name__)

DEFAULT_TRENDING_WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Worker:
    """Everything one worker process holds: the Faust app, its tables, model and metrics."""

    settings: Settings
    app: faust.App
    metrics: Metrics
    users: Any  # faust Table: user_id (bytes) -> UserRecord bytes
    trending: Any  # faust Table: "p<partition>" -> TrendingBoard bytes
    scorer: Scorer | None = None
    model_error: str | None = None
    started_at: float = field(default_factory=time.time)

    def is_ready(self) -> bool:
        """Tables recovered, not rebalancing, and the model loaded (when one is configured)."""
        recovery = self.app.tables.recovery
        recovered = recovery.completed.is_set() and not recovery.in_recovery
        model_ok = self.settings.model_dir is None or self.scorer is not None
        return bool(recovered and not self.app.rebalancing and model_ok)


def decode_limits(settings: Settings) -> DecodeLimits:
    routes = {
        settings.topic_views: frozenset({EventType.VIEW}),
        settings.topic_clicks: frozenset({EventType.CLICK}),
        settings.topic_purchases: frozenset({EventType.PURCHASE}),
    }
    cart_topic = getattr(settings, f"topic_{settings.add_to_cart_topic}")
    routes[cart_topic] = routes[cart_topic] | {EventType.ADD_TO_CART}
    return DecodeLimits(
        max_payload_bytes=settings.max_payload_bytes,
        max_future_skew_s=settings.max_future_skew_s,
        max_past_age_s=settings.max_event_age_s,
        topic_event_types=routes,
    )


def state_bounds(settings: Settings) -> StateBounds:
    return StateBounds(
        max_sequence_len=settings.max_sequence_len,
        max_purchased=settings.max_purchased,
        dedup_window=settings.dedup_window,
        session_gap_s=settings.session_gap_s,
        reorder_window_s=settings.reorder_window_s,
        user_ttl_s=settings.user_ttl_s,
    )


class StreamrecApp(faust.App):
    """faust.App that uses :mod:`streams.tansu`'s transport on the development broker."""

    exact_end_offsets: bool = False

    def _new_transport(self) -> Any:
        if self.exact_end_offsets:
            from streams.tansu import TansuTransport

            return TansuTransport(self.conf.broker_consumer, self)
        return super()._new_transport()


def create_faust_app(settings: Settings) -> faust.App:
    """The Faust app with streamrec's settings: RocksDB (rocksdict) state, raw bytes."""
    app = StreamrecApp(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=faust_credentials(settings),
        store="rocksdb://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        table_standby_replicas=settings.standby_replicas,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        stream_recovery_delay=0.1,
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_host=settings.web_host,
        web_stats_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        version=1,
    )
    app.exact_end_offsets = settings.broker_flavour == "tansu"
    return app


def create_worker(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    scorer: Scorer | None = None,
) -> Worker:
    """Build the worker: app, topics, tables, agents and HTTP views. Nothing runs yet."""
    app = create_faust_app(settings)
    metrics = create_metrics(registry or CollectorRegistry(), version=__version__)
    users = app.Table(
        "users", default=None, key_type=bytes, value_type=bytes,
        partitions=settings.topic_partitions,
    )
    trending = app.Table(
        "trending", default=None, key_type=bytes, value_type=bytes,
        partitions=settings.topic_partitions,
    )
    worker = Worker(settings=settings, app=app, metrics=metrics, users=users,
                    trending=trending, scorer=scorer)
    _preinitialise_label_sets(worker)
    _wire_agents(worker)
    from streams.web import register_views
    from streams.observe import register_observers

    register_views(worker)
    register_observers(worker)
    return worker


def _preinitialise_label_sets(worker: Worker) -> None:
    """Expose zero-valued series for every known reason, so rates start at 0, not absent."""
    from schemas.reasons import RejectReason

    for reason in RejectReason:
        worker.metrics.events_rejected.labels(reason=reason.value)
        worker.metrics.dead_letters.labels(reason=reason.value)
    for reason in FALLBACK_REASONS:
        worker.metrics.fallbacks.labels(reason=reason)


def _wire_agents(worker: Worker) -> None:
    settings, app, metrics = worker.settings, worker.app, worker.metrics
    input_topic = app.topic(*settings.input_topics, key_type=bytes, value_type=bytes)
    by_user_topic = app.topic(
        settings.topic_events_by_user, key_type=bytes, value_type=bytes,
        partitions=settings.topic_partitions,
    )
    recommendations_topic = app.topic(settings.topic_recommendations, key_type=bytes,
                                      value_type=bytes)
    dead_letter_topic = app.topic(settings.topic_dead_letter, key_type=bytes,
                                  value_type=bytes)
    limits = decode_limits(settings)
    bounds = state_bounds(settings)
    pseudonymise = (
        Pseudonymiser(settings.pseudonymisation_key.encode("utf-8"))
        if settings.pseudonymisation_key else None
    )

    async def ingest_agent(stream: faust.StreamT) -> None:
        async for events in stream.take_events(
            settings.batch_max_events, settings.batch_max_seconds
        ):
            batch = ingest(
                (_raw(event) for event in events),
                limits=limits,
                partitions=settings.topic_partitions,
                now_ms=now_ms(),
                pseudonymise=pseudonymise,
            )
            await _send_ingest_results(batch)

    async def _send_ingest_results(batch: IngestBatch) -> None:
        for dead in batch.dead_letters:
            reason = dead.rejection.reason.value
            message = dead.message
            log.warning(
                "dead-lettered message from %s[%d]@%d: reason=%s event_id=%s detail=%s",
                message.topic, message.partition, message.offset, reason,
                dead.rejection.event_id, dead.rejection.detail,
            )
            await dead_letter_topic.send(
                key=message.key,
                value=encode_dead_letter(
                    dead.rejection,
                    raw_key=message.key,
                    raw_value=message.value,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    timestamp_ms=message.timestamp_ms,
                    received_at_ms=now_ms(),
                ),
            )
            metrics.events_rejected.labels(reason=reason).inc()
            metrics.dead_letters.labels(reason=reason).inc()
        for (topic, event_type), count in batch.consumed.items():
            metrics.events_consumed.labels(topic=topic, event_type=event_type).inc(count)
        for partition, bundle in batch.bundles.items():
            await by_user_topic.send(
                key=f"p{partition}".encode(), value=encode_bundle(bundle), partition=partition
            )

    async def state_agent(stream: faust.StreamT) -> None:
        async for events in stream.take_events(
            max(1, settings.batch_max_events // 10), settings.batch_max_seconds
        ):
            await _process_bundles(stream, events)

    async def _process_bundles(stream: faust.StreamT, events: Sequence[EventT]) -> None:
        started = time.perf_counter()
        # All events of this batch come from one partition (isolated_partitions=True).
        # Table writes need a current event: make it the batch's newest event.
        stream._set_current_event(events[-1])  # noqa: SLF001 - see module docstring
        partition = events[-1].message.partition
        decoded = [ev for event in events for ev in decode_bundle(event.value)]
        update = apply_batch(decoded, lambda user: _load_user(worker, user), bounds)
        board_key = f"p{partition}".encode()
        stored_board = worker.trending.get(board_key)
        board = (
            TrendingBoard.from_bytes(stored_board) if stored_board
            else TrendingBoard.empty(settings.trending_half_life_s)
        )
        board = update_trending(
            board, update.fresh_events, DEFAULT_TRENDING_WEIGHTS,
            settings.trending_half_life_s, settings.trending_capacity,
        )
        worker.trending[board_key] = board.to_bytes()

        metrics.duplicates_dropped.inc(update.outcomes[Outcome.DUPLICATE])
        metrics.late_events.inc(update.outcomes[Outcome.LATE])
        changed = {user: update.users[user] for user in update.changed}
        candidates = {
            user: candidates_for(record.state, exclude_recent=settings.exclude_recent)
            for user, record in changed.items()
        }
        generated = now_ms()
        scored, report = score_users(
            candidates, worker.scorer, board, k=settings.top_k, now_ms=generated
        )
        if report.users_scored:
            metrics.scoring_batch_seconds.observe(report.seconds)
            metrics.scoring_user_seconds.observe(report.seconds / report.users_scored)
        model = (worker.scorer.name, worker.scorer.version) if worker.scorer else None
        for user, record in changed.items():
            emission = build_emission(
                user, record.state, scored[user], model=model, generated_at_ms=generated
            )
            worker.users[user.encode("utf-8")] = UserRecord(
                record.state, emission.value
            ).to_bytes()
            await recommendations_topic.send(key=emission.key, value=emission.value)
            if emission.fallback:
                metrics.fallbacks.labels(reason=emission.fallback).inc()
            metrics.freshness_seconds.observe(
                max(0.0, (now_ms() - emission.trigger_time_ms) / 1000.0)
            )
        metrics.recommendations_emitted.inc(len(changed))
        metrics.batch_size.observe(len(decoded))
        metrics.batch_processing_seconds.observe(time.perf_counter() - started)
        log.debug(
            "partition %d: %d events, %d users, %d recommendations in %.1f ms",
            partition, len(decoded), len(update.users), len(changed),
            (time.perf_counter() - started) * 1000,
        )

    app.agent(input_topic, name="streamrec.ingest", isolated_partitions=True)(ingest_agent)
    app.agent(by_user_topic, name="streamrec.state", isolated_partitions=True)(state_agent)


def _load_user(worker: Worker, user_id: str) -> UserRecord | None:
    stored = worker.users.get(user_id.encode("utf-8"))
    return UserRecord.from_bytes(stored) if stored else None


def _raw(event: EventT) -> RawMessage:
    message = event.message
    timestamp = message.timestamp
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(timestamp * 1000) if timestamp else None,
        key=message.key,
        value=message.value,
    )
