"""Gauges the worker samples on a timer: readiness, state size, lag, recovery, rebalances.

The arithmetic lives in pure functions (:func:`lag_samples`, :func:`directory_bytes`) that
the tests call without Faust; :func:`register_observers` wires them to the app's timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from prometheus_client import Gauge

    from streams.ops.health import Readiness
    from streams.ops.metrics import Metrics

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 2.0

PartitionKey = tuple[str, int]
"""(topic, partition): one label set of ``streamrec_consumer_lag_messages``."""


class TopicPartitionLike(Protocol):
    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


@dataclass(frozen=True)
class LagUpdate:
    """What to do to the lag gauge: set ``values``, remove the label sets in ``stale``."""

    values: dict[PartitionKey, int]
    stale: frozenset[PartitionKey]


def lag_samples(
    assignment: Iterable[TopicPartitionLike],
    highwaters: Mapping[Any, int | None],
    committed: Mapping[Any, int | None],
    watched: Collection[str],
    exported: Collection[PartitionKey] = (),
) -> LagUpdate:
    """Lag per assigned partition of the ``watched`` topics, and the series to drop.

    Both offsets follow Kafka's convention of naming the *next* offset: the high watermark
    is the offset the next produced record will get (aiokafka's ``highwater(tp)``, taken from
    fetch responses, which is right even on the development broker whose ListOffsets answers
    are not), and Faust's committed offset is the next offset to consume (it commits the last
    acked offset + 1). So ``lag = highwater - committed``; 0 when caught up. Faust keeps
    "nothing committed" and "committed 0" alike as ``None``: both count from offset 0.

    A partition whose high watermark is not known yet (no fetch answered since it was
    assigned) gets no new value; its previous one, if any, stays. Label sets in ``exported``
    for partitions this worker no longer holds (revoked by a rebalance) are ``stale``: the
    worker that holds them now reports them.

    >>> from collections import namedtuple
    >>> TP = namedtuple("TP", "topic partition")
    >>> update = lag_samples([TP("views", 0), TP("views", 1)], {TP("views", 0): 120},
    ...                      {TP("views", 0): 100}, {"views"}, exported={("views", 2)})
    >>> update.values, sorted(update.stale)
    ({('views', 0): 20}, [('views', 2)])
    """
    values: dict[PartitionKey, int] = {}
    held: set[PartitionKey] = set()
    for tp in assignment:
        if tp.topic not in watched:
            continue
        key = (tp.topic, tp.partition)
        held.add(key)
        highwater = highwaters.get(tp)
        if highwater is None:
            continue
        position = committed.get(tp) or 0
        values[key] = max(0, highwater - position)
    return LagUpdate(values=values, stale=frozenset(set(exported) - held))


def apply_lag(gauge: Gauge, update: LagUpdate, exported: set[PartitionKey]) -> None:
    """Set and remove label sets of ``gauge``; keep ``exported`` (what it shows) in step."""
    for topic, partition in update.stale:
        with contextlib.suppress(KeyError):  # never exported, or already gone
            gauge.remove(topic, str(partition))
        exported.discard((topic, partition))
    for (topic, partition), lag in update.values.items():
        gauge.labels(topic=topic, partition=str(partition)).set(lag)
        exported.add((topic, partition))


def directory_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 if it does not exist).

    Files RocksDB deletes during the walk (compaction, WAL rotation) are skipped.
    """
    total = 0
    stack = [str(path)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
    return total


def _estimated_keys(table: Any) -> int:
    """RocksDB's own key-count estimate summed over this worker's partitions (cheap).

    Faust keeps one bookkeeping key per partition database (its persisted changelog offset);
    it is not a user and is left out.
    """
    store = table.data
    offset_key = getattr(store, "offset_key", None)
    total = 0
    for db in getattr(store, "_dbs", {}).values():
        try:
            keys = int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
            if offset_key is not None and db.get(offset_key) is not None:
                keys -= 1
        except Exception:  # an estimate is best effort; never fail the sampler
            continue
        total += max(0, keys)
    return total


def trending_items(boards: Iterable[bytes]) -> int:
    """Items on these stored trending boards; an undecodable board counts as empty.

    The state agent counts and replaces such a board on the partition's next batch; the
    sampler runs every few seconds and must neither crash on it nor count it again.
    """
    from streams.state.bounds import StateDecodeError
    from streams.state.trending import TrendingBoard

    total = 0
    for value in boards:
        try:
            total += len(TrendingBoard.from_bytes(value))
        except StateDecodeError:
            continue
    return total


def register_observers(
    app: Any,
    metrics: Metrics,
    readiness: Readiness,
    *,
    users: Any,
    trending: Any,
    watched_topics: Collection[str],
) -> None:
    """Sample readiness, state size, recovery and consumer lag every few seconds."""
    recovery_started: list[float] = []  # holds the start time while a recovery runs
    lag_exported: set[PartitionKey] = set()

    @app.timer(SAMPLE_INTERVAL_S)
    async def sample() -> None:
        metrics.ready.set(1 if readiness.is_ready() else 0)
        metrics.state_users.set(_estimated_keys(users))
        metrics.state_items.set(trending_items(trending.values()))
        metrics.state_disk_bytes.set(directory_bytes(Path(app.conf.tabledir)))
        _sample_recovery(app, metrics, recovery_started)
        _sample_lag(app.consumer, metrics, watched_topics, lag_exported)

    @app.on_rebalance_complete.connect
    async def on_rebalance_complete(sender: Any, **kwargs: Any) -> None:
        metrics.rebalances.inc()

    @app.task
    async def loop_lag() -> None:
        await measure_loop_lag(metrics.event_loop_lag_seconds)


LOOP_LAG_INTERVAL_S = 0.25


async def measure_loop_lag(histogram: Any, interval_s: float = LOOP_LAG_INTERVAL_S,
                           rounds: int | None = None) -> None:
    """Sleep ``interval_s`` again and again and observe how late each wake-up came: the time
    the event loop was busy with something that did not yield (a blocking call on the loop
    delays every consumer, timer and HTTP answer of the worker). Forever, or ``rounds``."""
    done = 0
    while rounds is None or done < rounds:
        due = time.perf_counter() + interval_s
        await asyncio.sleep(interval_s)
        histogram.observe(max(0.0, time.perf_counter() - due))
        done += 1


def _sample_recovery(app: Any, metrics: Metrics, started: list[float]) -> None:
    recovery = app.tables.recovery  # the TableManager's; its type stub lacks ``recovery``
    remaining = int(recovery.active_remaining_total()) if recovery.in_recovery else 0
    metrics.recovery_remaining_records.set(remaining)
    metrics.recovery_in_progress.set(1 if recovery.in_recovery else 0)
    if recovery.in_recovery and not started:
        started.append(time.monotonic())
    elif not recovery.in_recovery and started:
        metrics.recovery_seconds.set(time.monotonic() - started.pop())


def _sample_lag(
    consumer: Any, metrics: Metrics, watched: Collection[str], exported: set[PartitionKey]
) -> None:
    from faust.exceptions import ConsumerNotStarted

    try:
        assignment = consumer.assignment()
    except ConsumerNotStarted:
        return
    committed = getattr(consumer, "_committed_offset", {})  # no public accessor
    update = lag_samples(
        assignment,
        highwaters={tp: _highwater(consumer, tp) for tp in assignment if tp.topic in watched},
        committed={tp: committed.get(tp) for tp in assignment},
        watched=watched,
        exported=exported,
    )
    apply_lag(metrics.consumer_lag, update, exported)


def _highwater(consumer: Any, tp: Any) -> int | None:
    """The partition's high watermark from the last fetch; None if unknown or revoked.

    The consumer runs in its own thread: a rebalance may revoke ``tp`` between reading the
    assignment and asking (aiokafka then fails an ``assert``).
    """
    try:
        return consumer.highwater(tp)
    except (AssertionError, KeyError):
        return None
