"""Every Prometheus metric the worker exposes, created in one place.

``create_metrics(registry)`` builds the whole bundle against the registry it is given, so tests
pass their own ``CollectorRegistry`` and nothing lives in module globals. Naming follows the
Prometheus conventions: the ``streamrec_`` prefix, base units (seconds), ``_total`` for
counters, and no high-cardinality labels (never a user id or an item id).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from streams.ops.stages import STAGE_BUCKETS

PREFIX = "streamrec"

# Event time -> recommendation produced: resolves 1 ms .. 60 s.
FRESHNESS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
BATCH_SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)
SCORED_USERS_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


@dataclass(frozen=True)
class Metrics:
    """The worker's metrics. Attribute names say what is measured; see each help text."""

    registry: CollectorRegistry
    events_consumed: Counter
    events_routed: Counter
    events_rejected: Counter
    dead_letters: Counter
    duplicates_dropped: Counter
    state_batch_retries: Counter
    late_events: Counter
    users_erased: Counter
    users_expired: Counter
    state_records_discarded: Counter
    batch_size: Histogram
    batch_processing_seconds: Histogram
    scoring_batch_seconds: Histogram
    scoring_batch_users: Histogram
    freshness_seconds: Histogram
    recommendations_emitted: Counter
    fallbacks: Counter
    model_info: Info
    model_loaded_timestamp_seconds: Gauge
    stage_seconds: Histogram
    event_loop_lag_seconds: Histogram
    gc_pause_seconds: Histogram
    model_loads: Counter
    model_load_seconds: Histogram
    model_load_failed: Gauge
    model_swaps: Counter
    promotion_to_serving_seconds: Histogram
    variant_recommendations: Counter
    variant_failures: Counter
    attributed: Counter
    attributed_revenue: Counter
    guard_rollbacks: Counter
    shadow_recommendations: Counter
    shadow_overlap: Histogram
    shadow_scoring_seconds: Histogram
    state_users: Gauge
    state_items: Gauge
    state_disk_bytes: Gauge
    consumer_lag: Gauge
    rebalances: Counter
    recovery_in_progress: Gauge
    recovery_remaining_records: Gauge
    recovery_seconds: Gauge
    ready: Gauge
    build_info: Info
    catalog_items: Gauge
    catalog_indexed_items: Gauge
    catalog_updates: Counter
    catalog_last_applied_timestamp_seconds: Gauge
    catalog_lag_messages: Gauge
    catalog_embedding_seconds: Histogram
    catalog_items_embedded: Counter
    catalog_embedding_backlog: Gauge
    catalog_embedding_failures: Counter
    items_rejected: Counter
    text_encoder_up: Gauge
    rule_applied: Counter
    rules_rejected: Counter
    control_rejected: Counter
    ranking_seconds: Histogram
    recommendation_diversity: Histogram
    searches_steering: Counter


def create_metrics(registry: CollectorRegistry, version: str = "0.0.0") -> Metrics:
    """Register every streamrec metric on ``registry`` and return the bundle, together with
    the standard process collectors (``process_resident_memory_bytes``,
    ``process_cpu_seconds_total``, open fds, ...; ``python_gc_*``, ``python_info``), which a
    custom registry does not get by itself."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)

    def name(suffix: str) -> str:
        return f"{PREFIX}_{suffix}"

    metrics = Metrics(
        registry=registry,
        events_consumed=Counter(
            name("events_consumed"),
            "Input messages consumed, by source topic and event type (invalid ones: 'invalid').",
            ["topic", "event_type"],
            registry=registry,
        ),
        events_routed=Counter(
            name("events_routed"),
            "Valid input events by the way they reached the state: direct (applied by the "
            "ingest actor: they arrived in the partition owning their user) or rekeyed (via "
            "the events-by-user topic).",
            ["path"],
            registry=registry,
        ),
        events_rejected=Counter(
            name("events_rejected"),
            "Input messages rejected by decoding or validation, by reason code.",
            ["reason"],
            registry=registry,
        ),
        dead_letters=Counter(
            name("dead_letters"),
            "Messages written to the dead-letter topic, by reason code.",
            ["reason"],
            registry=registry,
        ),
        duplicates_dropped=Counter(
            name("duplicates_dropped"),
            "Events whose event_id was already applied to the user's state (dropped).",
            registry=registry,
        ),
        state_batch_retries=Counter(
            name("state_batch_retries"),
            "State micro-batches applied again because the broker refused their changelog, "
            "recommendation or feedback records (e.g. just after a broker restart).",
            registry=registry,
        ),
        late_events=Counter(
            name("late_events"),
            "Events older than the reorder window: applied to aggregates only.",
            registry=registry,
        ),
        users_erased=Counter(
            name("users_erased"),
            "Users whose state and last recommendation were erased on request.",
            registry=registry,
        ),
        users_expired=Counter(
            name("users_expired"),
            "Users removed from state after the inactivity TTL.",
            registry=registry,
        ),
        state_records_discarded=Counter(
            name("state_records_discarded"),
            "Stored records found undecodable (corrupt or an unknown format) when read; "
            "they read as absent until the key is written afresh.",
            ["table"],
            registry=registry,
        ),
        batch_size=Histogram(
            name("batch_size_events"),
            "Events per micro-batch processed by the state stage.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        ),
        batch_processing_seconds=Histogram(
            name("batch_processing_seconds"),
            "Wall time to process one micro-batch: state, scoring and emission.",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=registry,
        ),
        scoring_batch_seconds=Histogram(
            name("scoring_batch_seconds"),
            "Wall time of one batched model call for all users a micro-batch touched.",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=registry,
        ),
        scoring_batch_users=Histogram(
            name("scoring_batch_users"),
            "Users scored by one batched model call. Scoring time per user is "
            "rate(streamrec_scoring_batch_seconds_sum) / rate(streamrec_scoring_batch_users_sum) "
            "(an average over calls; a single user is never timed alone).",
            buckets=SCORED_USERS_BUCKETS,
            registry=registry,
        ),
        freshness_seconds=Histogram(
            name("freshness_seconds"),
            "Event time of the triggering event to recommendation produced, in seconds.",
            buckets=FRESHNESS_BUCKETS,
            registry=registry,
        ),
        recommendations_emitted=Counter(
            name("recommendations_emitted"),
            "Recommendation messages produced to the recommendations topic.",
            registry=registry,
        ),
        fallbacks=Counter(
            name("fallbacks"),
            "Recommendations served from trending instead of the model, by reason.",
            ["reason"],
            registry=registry,
        ),
        model_info=Info(
            name("model"),
            "The model currently loaded: name, version, provider.",
            registry=registry,
        ),
        model_loaded_timestamp_seconds=Gauge(
            name("model_loaded_timestamp_seconds"),
            "Unix time at which the current model was loaded.",
            registry=registry,
        ),
        state_users=Gauge(
            name("state_users"),
            "Users held in this worker's state (partitions it owns).",
            registry=registry,
        ),
        state_items=Gauge(
            name("state_items"),
            "Items on this worker's trending boards.",
            registry=registry,
        ),
        state_disk_bytes=Gauge(
            name("state_disk_bytes"),
            "Bytes on disk under this worker's table directory (RocksDB files of every table "
            "partition it holds, write-ahead logs included).",
            registry=registry,
        ),
        consumer_lag=Gauge(
            name("consumer_lag_messages"),
            "Messages between the committed offset and the high watermark, per partition this "
            "worker holds of the input topics, user_erasure and events-by-user.",
            ["topic", "partition"],
            registry=registry,
        ),
        rebalances=Counter(
            name("rebalances"),
            "Consumer group rebalances this worker took part in.",
            registry=registry,
        ),
        recovery_in_progress=Gauge(
            name("table_recovery_in_progress"),
            "1 while the worker restores its tables from their changelogs, else 0.",
            registry=registry,
        ),
        recovery_remaining_records=Gauge(
            name("table_recovery_remaining_records"),
            "Changelog records still to restore before the worker is ready.",
            registry=registry,
        ),
        recovery_seconds=Gauge(
            name("table_recovery_last_duration_seconds"),
            "Duration of the last completed table recovery.",
            registry=registry,
        ),
        ready=Gauge(
            name("ready"),
            "1 when the worker has recovered its tables, is not rebalancing and has loaded its "
            "model (when one is configured), else 0.",
            registry=registry,
        ),
        build_info=Info(
            name("build"),
            "streamrec version and Python version of this worker.",
            registry=registry,
        ),
        catalog_items=Gauge(
            name("catalog_items"), "Items in this worker's copy of the catalogue.",
            registry=registry,
        ),
        catalog_indexed_items=Gauge(
            name("catalog_indexed_items"),
            "Items in the text nearest-neighbour index (available and embedded).",
            registry=registry,
        ),
        catalog_updates=Counter(
            name("catalog_updates"),
            "Catalogue records applied, by kind (upsert, remove).",
            ["kind"], registry=registry,
        ),
        catalog_last_applied_timestamp_seconds=Gauge(
            name("catalog_last_applied_timestamp_seconds"),
            "Unix time the catalogue last applied a record (0: never since start).",
            registry=registry,
        ),
        catalog_lag_messages=Gauge(
            name("catalog_lag_messages"),
            "Records of the items topic not yet applied by this worker.",
            registry=registry,
        ),
        catalog_embedding_seconds=Histogram(
            name("catalog_embedding_seconds"),
            "Wall time of one batched text-encoder call on catalogue items.",
            buckets=BATCH_SECONDS_BUCKETS, registry=registry,
        ),
        catalog_items_embedded=Counter(
            name("catalog_items_embedded"), "Catalogue items whose text was embedded.",
            registry=registry,
        ),
        catalog_embedding_backlog=Gauge(
            name("catalog_embedding_backlog"),
            "Catalogue items waiting for the text encoder right now.",
            registry=registry,
        ),
        catalog_embedding_failures=Counter(
            name("catalog_embedding_failures"),
            "Catalogue items stored without an embedding (encoder unavailable or failed).",
            registry=registry,
        ),
        stage_seconds=Histogram(
            name("stage_seconds"),
            "Where an event's time goes, by stage: input_wait (producer to ingest, per "
            "event), ingest (per batch), rekey_hop (ingest to state, per bundle; events "
            "applied without the hop are not observed), state, "
            "scoring, emit, produce (per state micro-batch), scoring_wait (the part of "
            "scoring spent waiting for the scoring thread, per scoring call). See "
            "streams/ops/stages.py.",
            ["stage"], buckets=STAGE_BUCKETS, registry=registry,
        ),
        event_loop_lag_seconds=Histogram(
            name("event_loop_lag_seconds"),
            "How late the event loop ran a timer due every 0.25 s: time the loop was blocked.",
            buckets=STAGE_BUCKETS, registry=registry,
        ),
        gc_pause_seconds=Histogram(
            name("gc_pause_seconds"),
            "Pauses of Python's garbage collector (the event loop stops meanwhile), by "
            "generation. See streams/ops/collector.py.",
            ["generation"], buckets=STAGE_BUCKETS, registry=registry,
        ),
        model_loads=Counter(
            name("model_loads"),
            "Model versions loaded from the registry, by outcome (ok: checked, warmed and "
            "ready to serve; failed: never serves, the serving version stays).",
            ["outcome"], registry=registry,
        ),
        model_load_seconds=Histogram(
            name("model_load_seconds"),
            "Time to load, check and warm one model version (off the scoring thread).",
            buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
            registry=registry,
        ),
        model_load_failed=Gauge(
            name("model_load_failed"),
            "Model versions the control topic asks for that failed to load or to pass the "
            "servability check (0 when every wanted version serves).",
            registry=registry,
        ),
        model_swaps=Counter(
            name("model_swaps"),
            "Times the model serving users outside experiments changed (a promotion or a "
            "rollback took effect between two micro-batches).",
            registry=registry,
        ),
        promotion_to_serving_seconds=Histogram(
            name("promotion_to_serving_seconds"),
            "From the promotion record's time to this worker serving that version.",
            buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
            registry=registry,
        ),
        variant_recommendations=Counter(
            name("variant_recommendations"),
            "Recommendations sent, by experiment and variant ('none' outside experiments).",
            ["experiment", "variant"], registry=registry,
        ),
        variant_failures=Counter(
            name("variant_failures"),
            "Recommendations whose variant's model failed (scoring_error) or knew none of the "
            "user's items (unknown_items): what the guard rail compares with the control.",
            ["experiment", "variant"], registry=registry,
        ),
        attributed=Counter(
            name("attributed"),
            "Interactions credited to the recommendation that showed the item, by "
            "experiment, variant and event type (click, add_to_cart, purchase).",
            ["experiment", "variant", "event_type"], registry=registry,
        ),
        attributed_revenue=Counter(
            name("attributed_revenue"),
            "Revenue (price x quantity, the shop's currency) of attributed purchases.",
            ["experiment", "variant"], registry=registry,
        ),
        guard_rollbacks=Counter(
            name("guard_rollbacks"),
            "Experiments this worker's guard rail rolled back to the control, by experiment "
            "and the variant that failed.",
            ["experiment", "variant"], registry=registry,
        ),
        shadow_recommendations=Counter(
            name("shadow_recommendations"),
            "Lists the shadow variant made (written to the shadow topic, never to users).",
            registry=registry,
        ),
        shadow_overlap=Histogram(
            name("shadow_overlap"),
            "Per user, the share of the live list's items the shadow variant also listed "
            "(overlap@k, k = top_k).",
            buckets=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=registry,
        ),
        shadow_scoring_seconds=Histogram(
            name("shadow_scoring_seconds"),
            "Wall time of the shadow variant's batched scoring call for one micro-batch.",
            buckets=BATCH_SECONDS_BUCKETS, registry=registry,
        ),
        items_rejected=Counter(
            name("items_rejected"),
            "Catalogue records sent to the dead-letter topic, by reason.",
            ["reason"], registry=registry,
        ),
        ranking_seconds=Histogram(
            name("ranking_seconds"),
            "Wall time of the ranking layer (search, rules, diversity) for one micro-batch.",
            buckets=BATCH_SECONDS_BUCKETS, registry=registry,
        ),
        recommendation_diversity=Histogram(
            name("recommendation_diversity"),
            "Intra-list diversity of recommendations whose items have text (one list in 8, "
            "at most 32 per micro-batch): mean pairwise cosine distance of their text "
            "embeddings (0: alike, 1: unrelated).",
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.5), registry=registry,
        ),
        searches_steering=Counter(
            name("searches_steering"),
            "Recommendations steered by the user's recent search.",
            registry=registry,
        ),
        text_encoder_up=Gauge(
            name("text_encoder_up"),
            "1 when the text encoder is loaded, 0 when recommendations use ids only.",
            registry=registry,
        ),
        rule_applied=Counter(
            name("rule_applied"),
            "Items a business rule removed, re-scored or held back by a category cap, by "
            "rule_id (one series per rule ever applied: bounded by the rules configured).",
            ["rule"], registry=registry,
        ),
        rules_rejected=Counter(
            name("rules_rejected"),
            "Rule records sent to the dead-letter topic, by reason.",
            ["reason"], registry=registry,
        ),
        control_rejected=Counter(
            name("control_rejected"),
            "Control-topic records (promotions, experiments) sent to the dead-letter topic, "
            "by reason.",
            ["reason"], registry=registry,
        ),
    )
    metrics.build_info.info({"version": version, "python": platform.python_version()})
    return metrics
