"""The Faust application: settings in, a wired worker out. Read it to see the flow.

    views / clicks / purchases / user_erasure
        ──► ingest agent (decode, validate, dead-letter, re-key by user)   ingest/agent.py
        ──► events-by-user (one bundle per user partition per micro-batch)
            (skipped by events already in their user's partition, keyed by user_id)
        ──► state agent, one actor per partition                           state/agent.py
              state (users + trending tables)                              state/
              → candidates                                                 candidates/
              → score (one batched ONNX call)                              scoring/
              → emit                                                       emit/
        ──► recommendations (key = user_id)

Kafka plumbing (transport, topics, clients, batched produce) lives in ``kafka/``; what an
operator sees (metrics, health, HTTP views, logs) in ``ops/``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from prometheus_client import CollectorRegistry

from schemas.control import Experiment, ExperimentStatus, encode_control
from schemas.reasons import RejectReason
from schemas.rules import CategoryCap
from streams import __version__
from streams.attribution.ledger import ATTRIBUTED_EVENT_TYPES
from streams.catalog.catalog import Catalog
from streams.catalog.follow import follow_catalog
from streams.catalog.reader import CatalogReader
from streams.catalog.store import CatalogStore
from streams.clock import now_ms
from streams.control.follow import follow_control
from streams.ingest.agent import ROUTES, DirectPath, IngestAgent, IngestConfig
from streams.ingest.batch import Pseudonymiser
from streams.kafka.clients import faust_credentials
from streams.ops.catalog_views import catalog_status, register_catalog_views
from streams.ops.collector import register_collector
from streams.ops.health import BrokerHealth, Readiness, aiokafka_connector
from streams.ops.metrics import Metrics, create_metrics
from streams.ops.observe import register_observers
from streams.ops.routing import advertised_host
from streams.ops.web import UsersApi, register_views
from streams.ranking.layer import RankingConfig, RankingLayer
from streams.ranking.search import QueryEmbeddings
from streams.rules.book import RuleBook
from streams.rules.follow import follow_rules
from streams.scoring.guard import GuardRail, Verdict
from streams.scoring.plan import NO_EXPERIMENT, fixed_plan
from streams.scoring.pool import ModelPool
from streams.scoring.scorer import (
    FALLBACK_REASONS,
    TEXT_UNAVAILABLE,
    Retrieval,
    Scorer,
    ScoringStage,
)
from streams.settings import Settings
from streams.state.agent import StateAgent, StateConfig
from streams.state.bounds import StateBounds
from streams.state.tables import STATE_TABLES, TRENDING_TABLE, USERS_TABLE

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """One worker process as its runner and tests see it. The agents and HTTP views do not
    take this: each gets only what it uses (see :func:`create_worker`)."""

    settings: Settings
    app: faust.App
    metrics: Metrics
    users: Any  # faust Table: user_id (bytes) -> UserRecord bytes
    trending: Any  # faust Table: "p<partition>" -> TrendingBoard bytes
    scoring: ScoringStage
    readiness: Readiness
    catalog: CatalogReader
    rules: RuleBook
    pool: ModelPool | None = None
    """The registry's loaded versions (None with a fixed model directory or none)."""

    def is_ready(self) -> bool:
        return self.readiness.is_ready()


def state_bounds(settings: Settings) -> StateBounds:
    return StateBounds(
        max_sequence_len=settings.max_sequence_len,
        max_purchased=settings.max_purchased,
        dedup_window=settings.dedup_window,
        session_gap_s=settings.session_gap_s,
        reorder_window_s=settings.reorder_window_s,
        user_ttl_s=settings.user_ttl_s,
        max_searches=settings.max_searches,
    )


class StreamrecApp(faust.App):
    """faust.App with streamrec's transport (:mod:`streams.kafka.transport`): the consumer's
    fetch wait from settings, and changelog end offsets read from a fetch's high watermark
    (exact on every broker, see :mod:`streams.kafka.end_offsets`)."""

    fetch_max_wait_ms: int = 1500

    def _new_transport(self) -> Any:
        from streams.kafka.transport import StreamrecTransport

        return StreamrecTransport(self.conf.broker_consumer, self)


def create_faust_app(settings: Settings, *, broker_keeps_data: bool = True) -> faust.App:
    """The Faust app with streamrec's settings: RocksDB (rocksdict) state, raw bytes.

    ``broker_keeps_data=False`` (the embedded in-memory broker, detected by
    :func:`streams.kafka.embedded.broker_keeps_data`) turns off Faust's check that no local
    changelog offset is ahead of the broker's: that broker forgets every topic when it
    restarts while the offsets persisted in local RocksDB do not, and the check would stop
    the worker for good. Against Apache Kafka the check stays on."""
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
        web_host=advertised_host(settings.web_host),  # what other workers reach: /users routing
        web_stats_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        producer_max_batch_size=512 * 1024,
        recovery_consistency_check=broker_keeps_data,
        version=1,
    )
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
    broker_keeps_data: bool = True,
) -> Worker:
    """Build the worker: app, topics, tables, agents and HTTP views. Nothing runs yet."""
    app = create_faust_app(settings, broker_keeps_data=broker_keeps_data)
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
    catalog = Catalog()
    catalog_reader = CatalogReader(
        topic=settings.topic_items,
        store=CatalogStore(settings.data_dir / "catalog" / settings.app_id),
        catalog=catalog, metrics=metrics,
        executor=ThreadPoolExecutor(1, thread_name_prefix="embedding"),
        load_encoder=lambda: _load_encoder(settings),
        max_batch=settings.catalog_max_batch,
    )
    catalog_reader.load()
    rules = rule_book(settings)
    layer = RankingLayer(
        RankingConfig(k=settings.top_k, search_boost=settings.search_boost,
                      search_half_life_s=settings.search_half_life_s,
                      diversity_lambda=settings.diversity_lambda),
        catalog=catalog, encode=lambda: catalog_reader.encoder,
        queries=QueryEmbeddings(settings.query_cache_size), rules=rules.current,
    )
    pool = model_pool(settings, metrics) if settings.model_registry is not None else None
    fixed = fixed_plan(scorer)
    scoring = ScoringStage(
        pool.plan if pool is not None else (lambda: fixed),
        ThreadPoolExecutor(1, thread_name_prefix="scoring"),
        Retrieval(catalog, settings.content_slots, settings.content_history), layer,
        serving=pool.wait_synced if pool is not None else None)
    readiness = Readiness(
        app, BrokerHealth(aiokafka_connector(app)),
        model_required=settings.model_dir is not None, model_name=scoring.model_name,
        catalog=lambda: catalog_status(catalog_reader),
        models_synced=(lambda: pool.synced) if pool is not None else (lambda: True),
        models=pool.status if pool is not None else None,
    )
    worker = Worker(settings=settings, app=app, metrics=metrics, users=users,
                    trending=trending, scoring=scoring, readiness=readiness,
                    catalog=catalog_reader, rules=rules, pool=pool)
    _preinitialise_label_sets(metrics)
    for rule in rules.current().active:  # rules from settings: counted from zero
        metrics.rule_applied.labels(rule=rule.rule_id)
    _wire_agents(worker)
    _start_catalog(app, catalog_reader)
    _start_rules(app, rules, settings.topic_rules)
    if pool is not None:
        _start_control(app, pool, settings.topic_control)
    register_views(app, registry=metrics.registry, readiness=readiness, users=users,
                   users_api=UsersApi(settings.users_api_enabled, settings.users_api_token))
    register_catalog_views(app, catalog_reader)
    register_collector(app, metrics.gc_pause_seconds, readiness.is_ready)
    register_observers(
        app, metrics, readiness, users=users, trending=trending,
        watched_topics={*settings.input_topics, settings.topic_user_erasure,
                        settings.topic_events_by_user},
    )
    return worker


def _load_encoder(settings: Settings) -> Callable[[Sequence[str]], Any]:
    from models.text.encoder import TextEncoder

    encoder = TextEncoder.load(settings.text_model_path, device=settings.model_device,
                               threads=settings.text_model_threads)
    log.info("text encoder %s on %s", encoder.name, encoder.provider)
    return encoder.encode


def model_pool(settings: Settings, metrics: Metrics) -> ModelPool:
    """The versions of ``STREAMREC_MODEL_REGISTRY`` the control topic asks for, each loaded,
    checked and warmed on a loader thread of its own."""
    from models.registry import ModelRegistry

    registry = ModelRegistry(settings.model_registry)  # type: ignore[arg-type]  # checked by caller

    def load(path: Path) -> Scorer:
        from models.serving import check_servable, load_scorer

        scorer = load_scorer(path, device=settings.model_device,
                             intra_op_threads=settings.model_threads,
                             retrieval=settings.model_retrieval,
                             candidates=settings.model_candidates)
        check_servable(scorer, k=settings.top_k)
        return scorer

    return ModelPool(locate=registry.path_of, load=load,
                     loader=ThreadPoolExecutor(1, thread_name_prefix="model-loader"),
                     metrics=metrics, timeout_s=settings.model_load_timeout_s)


def rule_book(settings: Settings) -> RuleBook:
    """The rules from settings (``STREAMREC_RULES``, and ``STREAMREC_CATEGORY_CAP`` as the
    rule ``category_cap``); the rules topic adds to and overrides them while running."""
    rules = list(settings.rule_list)
    if settings.category_cap is not None:
        rules.append(CategoryCap(rule_id="category_cap", max_items=settings.category_cap))
    key = settings.pseudonymisation_key
    return RuleBook(rules, pseudonymise=Pseudonymiser(key.encode("utf-8")) if key else None)


def _start_rules(app: faust.App, book: RuleBook, topic: str) -> None:
    """Follow the rules topic for as long as the worker runs."""
    _run_follower(app, lambda servers, auth: follow_rules(book, servers, auth, topic=topic))


def _start_control(app: faust.App, pool: ModelPool, topic: str) -> None:
    """Follow the control topic (promotions, experiments) for as long as the worker runs."""
    _run_follower(app, lambda servers, auth: follow_control(pool.apply, servers, auth,
                                                            topic=topic))


def _roll_back(app: faust.App, pool: ModelPool | None, topic: str
               ) -> Callable[[Experiment, Verdict], Awaitable[None]]:
    """What the guard rail does with a condemned experiment: stop it here at once, and
    announce it on the control topic so every worker stops it (and it stays stopped)."""

    async def roll_back(experiment: Experiment, verdict: Verdict) -> None:
        reason = verdict.reason(experiment.control.name)
        if pool is not None:
            pool.stop_here(experiment.name, reason)
        key, value = encode_control(dataclasses.replace(
            experiment, status=ExperimentStatus.ROLLED_BACK, reason=reason,
            updated_at_ms=now_ms()))
        try:
            await app.producer.send_and_wait(topic, key, value, None, None, None)
        except Exception:  # stopped here anyway; another worker's guard rail may announce it
            log.exception("could not announce the rollback of experiment %s on %s",
                          experiment.name, topic)

    return roll_back


def _start_catalog(app: faust.App, reader: CatalogReader) -> None:
    """Follow the items topic for as long as the worker runs."""
    _run_follower(app, lambda servers, auth: follow_catalog(reader, servers, auth))


def _run_follower(app: faust.App,
                  follow: Callable[[list[str], dict[str, Any]], Awaitable[None]]) -> None:
    """Run ``follow`` as a task of the app, with the app's brokers and credentials (TLS,
    SASL): the readers of the compacted topics every worker reads whole."""

    async def task() -> None:
        servers = faust_aiokafka.server_list(app.conf.broker, 9092)
        auth = faust_aiokafka.credentials_to_aiokafka_auth(
            app.conf.broker_credentials, app.conf.ssl_context)
        await follow(servers, dict(auth))

    app.task(task)


def _preinitialise_label_sets(metrics: Metrics) -> None:
    """Expose zero-valued series for every known reason, so rates start at 0, not absent."""
    for reason in RejectReason:
        metrics.events_rejected.labels(reason=reason.value)
        metrics.dead_letters.labels(reason=reason.value)
    for fallback in (*FALLBACK_REASONS, TEXT_UNAVAILABLE):
        metrics.fallbacks.labels(reason=fallback)
    for table in STATE_TABLES:
        metrics.state_records_discarded.labels(table=table)
    for reason in RejectReason:
        metrics.items_rejected.labels(reason=reason.value)
    for kind in ("upsert", "remove"):
        metrics.catalog_updates.labels(kind=kind)
    for reason in RejectReason:
        metrics.rules_rejected.labels(reason=reason.value)
        metrics.control_rejected.labels(reason=reason.value)
    for outcome in ("ok", "failed"):
        metrics.model_loads.labels(outcome=outcome)
    outside = (NO_EXPERIMENT, NO_EXPERIMENT)  # every family visible from the start
    for counter in (metrics.variant_recommendations, metrics.variant_failures,
                    metrics.attributed_revenue, metrics.guard_rollbacks):
        counter.labels(*outside)
    for event_type in ATTRIBUTED_EVENT_TYPES:
        metrics.attributed.labels(*outside, event_type)
    for path in ROUTES:
        metrics.events_routed.labels(path=path)
    for generation in range(3):
        metrics.gc_pause_seconds.labels(generation=str(generation))


def _wire_agents(worker: Worker) -> None:
    settings, app = worker.settings, worker.app
    inputs = app.topic(*settings.input_topics, settings.topic_user_erasure,
                       settings.topic_items, settings.topic_rules, settings.topic_control,
                       key_type=bytes, value_type=bytes)
    by_user = app.topic(settings.topic_events_by_user, key_type=bytes, value_type=bytes,
                        partitions=settings.topic_partitions)
    dead_letters = app.topic(settings.topic_dead_letter, key_type=bytes, value_type=bytes)
    state = StateAgent(
        StateConfig.from_settings(settings), state_bounds(settings), worker.metrics,
        users=worker.users, trending=worker.trending, scoring=worker.scoring,
        purchase_window=worker.rules.current,
        producer=app.producer, recommendations_topic=settings.topic_recommendations,
        guard=GuardRail(settings.guard_max_p_value, settings.guard_min_users),
        roll_back=_roll_back(app, worker.pool, settings.topic_control),
    )
    direct = DirectPath(owns=_owns_actively(app, settings.topic_events_by_user),
                        apply=state.apply_direct) if settings.skip_rekey_hop else None
    ingest = IngestAgent(
        IngestConfig.from_settings(settings),
        worker.metrics, by_user, dead_letters, direct,
    )
    app.agent(inputs, name="streamrec.ingest", isolated_partitions=True)(ingest.__call__)
    app.agent(by_user, name="streamrec.state", isolated_partitions=True)(state.__call__)


def _owns_actively(app: faust.App, topic: str) -> Callable[[int], bool]:
    """Whether this worker owns ``topic``'s partition actively now (not while a rebalance is
    under way). Faust assigns the partitions of topics with one partition count together, so
    the owner of ``events-by-user`` partition p owns the state tables' partition p and, with
    inputs of as many partitions, the inputs' partition p too."""

    def owns(partition: int) -> bool:
        return not app.rebalancing and app.assignor.is_active(TP(topic, partition))

    return owns
