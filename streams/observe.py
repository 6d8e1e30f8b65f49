"""Gauges the worker samples on a timer: readiness, state size, lag, recovery, rebalances."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.app import Worker

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 2.0


def _estimated_keys(table: Any) -> int:
    """RocksDB's own key-count estimate summed over this worker's partitions (cheap)."""
    store = table.data
    total = 0
    for db in getattr(store, "_dbs", {}).values():
        try:
            total += int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
        except Exception:  # an estimate is best effort; never fail the sampler
            continue
    return total


def _trending_items(worker: Worker) -> int:
    from streams.state.trending import TrendingBoard

    return sum(len(TrendingBoard.from_bytes(value)) for value in worker.trending.values())


def register_observers(worker: Worker) -> None:
    app, metrics = worker.app, worker.metrics
    recovery_started: list[float] = []  # holds the start time while a recovery runs

    @app.timer(SAMPLE_INTERVAL_S)
    async def sample() -> None:
        metrics.ready.set(1 if worker.is_ready() else 0)
        metrics.state_users.set(_estimated_keys(worker.users))
        metrics.state_items.set(_trending_items(worker))
        _sample_recovery(worker, recovery_started)
        _sample_lag(worker)

    @app.on_rebalance_complete.connect
    async def on_rebalance_complete(sender: Any, **kwargs: Any) -> None:
        metrics.rebalances.inc()


def _sample_recovery(worker: Worker, started: list[float]) -> None:
    recovery = worker.app.tables.recovery
    metrics = worker.metrics
    remaining = int(recovery.active_remaining_total()) if recovery.in_recovery else 0
    metrics.recovery_remaining_records.set(remaining)
    metrics.recovery_in_progress.set(1 if recovery.in_recovery else 0)
    if recovery.in_recovery and not started:
        started.append(time.monotonic())
    elif not recovery.in_recovery and started:
        metrics.recovery_seconds.set(time.monotonic() - started.pop())


def _sample_lag(worker: Worker) -> None:
    consumer = worker.app.consumer
    watched = set(worker.settings.input_topics) | {worker.settings.topic_events_by_user}
    committed = getattr(consumer, "_committed_offset", {})
    for tp in consumer.assignment():
        if tp.topic not in watched:
            continue
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        position = committed.get(tp)
        lag = highwater - (position + 1 if position is not None else 0)
        worker.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(
            max(0, lag)
        )
