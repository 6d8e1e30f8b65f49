"""The Faust application: settings in, a wired worker out. Read it to see the flow.

    views / clicks / purchases / user_erasure
        ──► ingest agent (decode, validate, dead-letter, re-key by user)   agents/ingest_agent
        ──► events-by-user (one bundle per user partition per micro-batch)
        ──► state agent, one actor per partition                           agents/state_agent
              state (users + trending tables) → candidates → score → emit
        ──► recommendations (key = user_id)
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from schemas.codecs import DecodeLimits, EventType
from schemas.reasons import RejectReason
from streams import __version__
from streams.agents.ingest_agent import IngestAgent
from streams.agents.state_agent import StateAgent
from streams.health import BrokerHealth, aiokafka_connector
from streams.kafka_clients import faust_credentials
from streams.metrics import Metrics, create_metrics
from streams.scoring import FALLBACK_REASONS, Scorer
from streams.settings import Settings
from streams.state.bounds import StateBounds
from streams.state.tables import STATE_TABLES, TRENDING_TABLE, USERS_TABLE

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """Everything one worker process holds: the Faust app, its tables, model and metrics."""

    settings: Settings
    app: faust.App
    metrics: Metrics
    users: Any  # faust Table: user_id (bytes) -> UserRecord bytes
    trending: Any  # faust Table: "p<partition>" -> TrendingBoard bytes
    decode_limits: DecodeLimits
    bounds: StateBounds
    scorer: Scorer | None = None
    scoring_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="scoring")
    )
    model_error: str | None = None
    started_at: float = field(default_factory=time.time)
    broker_health: BrokerHealth | None = None

    def is_ready(self) -> bool:
        """Tables recovered, not rebalancing, the model loaded (when one is configured)
        and the broker answering (when a probe is attached)."""
        recovery = self.app.tables.recovery  # type: ignore[attr-defined]  # Faust's TableManagerT omits it
        recovered = recovery.completed.is_set() and not recovery.in_recovery
        model_ok = self.settings.model_dir is None or self.scorer is not None
        broker_ok = self.broker_health is None or self.broker_health.reachable
        return bool(recovered and not self.app.rebalancing and model_ok and broker_ok)


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
    """faust.App with :mod:`streams.transport` (the consumer's fetch wait from settings),
    plus :mod:`streams.tansu`'s exact end offsets on the development broker."""

    exact_end_offsets: bool = False
    fetch_max_wait_ms: int = 1500

    def _new_transport(self) -> Any:
        if self.exact_end_offsets:
            from streams.tansu import TansuTransport

            return TansuTransport(self.conf.broker_consumer, self)
        from streams.transport import StreamrecTransport

        return StreamrecTransport(self.conf.broker_consumer, self)


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
        producer_max_batch_size=512 * 1024,
        # The embedded broker keeps nothing across a restart: its changelogs come back
        # empty while the offsets persisted in local RocksDB do not, and Faust's check
        # would stop the worker for good. Real Kafka keeps the check.
        recovery_consistency_check=settings.broker_flavour != "tansu",
        version=1,
    )
    app.exact_end_offsets = settings.broker_flavour == "tansu"
    app.fetch_max_wait_ms = round(settings.broker_fetch_max_wait_s * 1000)
    return app


def _rocksdb_options(settings: Settings, *, small: bool) -> dict[str, int]:
    """RocksDB memory bounds for each table partition (block cache and two memtables), so
    RSS stays flat however many users the state holds. The trending board is a handful of
    keys per partition, so it gets an eighth of each."""
    share = 8 if small else 1
    return {
        "block_cache_size": settings.rocksdb_block_cache_bytes // share,
        "write_buffer_size": settings.rocksdb_write_buffer_bytes // share,
        "max_write_buffer_number": 2,
    }


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
        USERS_TABLE, default=None, key_type=bytes, value_type=bytes,
        partitions=settings.topic_partitions,
        options=_rocksdb_options(settings, small=False),
    )
    trending = app.Table(
        TRENDING_TABLE, default=None, key_type=bytes, value_type=bytes,
        partitions=settings.topic_partitions,
        options=_rocksdb_options(settings, small=True),
    )
    worker = Worker(settings=settings, app=app, metrics=metrics, users=users,
                    trending=trending, decode_limits=decode_limits(settings),
                    bounds=state_bounds(settings), scorer=scorer,
                    broker_health=BrokerHealth(aiokafka_connector(app)))
    _preinitialise_label_sets(worker)
    _wire_agents(worker)
    from streams.observe import register_observers
    from streams.web import register_views

    register_views(worker)
    register_observers(worker)
    return worker


def _preinitialise_label_sets(worker: Worker) -> None:
    """Expose zero-valued series for every known reason, so rates start at 0, not absent."""
    for reason in RejectReason:
        worker.metrics.events_rejected.labels(reason=reason.value)
        worker.metrics.dead_letters.labels(reason=reason.value)
    for fallback in FALLBACK_REASONS:
        worker.metrics.fallbacks.labels(reason=fallback)
    for table in STATE_TABLES:
        worker.metrics.state_records_discarded.labels(table=table)


def _wire_agents(worker: Worker) -> None:
    settings, app = worker.settings, worker.app
    inputs = app.topic(*settings.input_topics, settings.topic_user_erasure,
                       key_type=bytes, value_type=bytes)
    by_user = app.topic(settings.topic_events_by_user, key_type=bytes, value_type=bytes,
                        partitions=settings.topic_partitions)
    dead_letters = app.topic(settings.topic_dead_letter, key_type=bytes, value_type=bytes)
    app.agent(inputs, name="streamrec.ingest", isolated_partitions=True)(
        IngestAgent(worker, by_user, dead_letters).__call__
    )
    app.agent(by_user, name="streamrec.state", isolated_partitions=True)(
        StateAgent(worker, settings.topic_recommendations).__call__
    )
