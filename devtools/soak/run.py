"""One soak run: broker, worker, closed-loop load, periodic samples, a report.

>>> # run_soak(users=1_000_000, json_out=Path("soak.json"))  # 10-20 minutes here
"""

from __future__ import annotations

import bisect
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from devtools.broker import start_broker
from devtools.isolation import run_settings
from devtools.processes import start_worker, stop_process, wait_until_ready
from devtools.soak.load import (
    HEAVY_PREFIX,
    LoadShape,
    ProducerProgress,
    produce_closed_loop,
    synthetic_events,
)
from devtools.soak.probe import disk_bytes, processed_events, rss_bytes, scrape
from streams.errors import StreamrecError
from streams.kafka.topics import create_topics
from streams.settings import Settings

MB = 1024 * 1024
STOP_TIMEOUT_S = 30.0  # the worker commits and closes its RocksDB stores on SIGTERM


class SoakError(StreamrecError):
    """The soak could not run to the end: the message says which step failed; rerun with
    ``--keep-workdir`` and read ``worker.log`` in the work directory."""


@dataclass(frozen=True)
class SoakConfig:
    """Everything a soak run needs; the defaults are the documented run."""

    shape: LoadShape = field(default_factory=LoadShape)
    partitions: int = 4
    """Partitions of every topic (one worker owns them all)."""
    sample_every_s: float = 5.0
    max_backlog: int = 20_000
    """Events the producer may be ahead of the worker."""
    top_k: int = 5
    """Items per recommendation (small: the in-memory broker keeps every message)."""
    trending_capacity: int = 100
    broker_url: str | None = None
    """Use this Kafka; unset: start the embedded broker for the run."""
    workdir: Path | None = None
    keep_workdir: bool = False
    json_out: Path | None = Path("soak.json")
    drain_timeout_s: float = 900.0
    """Longest wait for the worker to process what was sent after the producer is done."""


@dataclass(frozen=True)
class Sample:
    elapsed_s: float
    users: int
    """Regular users whose first event the worker has processed (approximately: by
    position in the stream)."""
    events: int
    """Events processed by the state stage since the start."""
    events_per_s: float
    """Over the interval since the previous sample."""
    worker_rss_mb: float
    broker_rss_mb: float | None
    disk_mb: float
    """RocksDB data directory on disk (``du``)."""
    state_users_estimate: int
    """RocksDB's own key-count estimate (``streamrec_state_users``)."""


@dataclass
class SoakReport:
    config: dict[str, Any]
    samples: list[Sample]
    record_sizes: dict[str, Any]
    summary: dict[str, Any]
    elapsed_s: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def run_soak(users: int = 1_000_000, *, print_fn: Callable[[str], None] = print,
             **options: Any) -> SoakReport:
    """Drive ``users`` synthetic users through one worker and sample it (see the package
    docstring). ``options`` are :class:`SoakConfig` fields, or :class:`LoadShape` fields
    (``events_per_user``, ``heavy_users``, ...)."""
    shape_fields = set(LoadShape.__dataclass_fields__)
    shape = replace(LoadShape(), users=users,
                    **{k: v for k, v in options.items() if k in shape_fields})
    config = SoakConfig(shape=shape, **{k: v for k, v in options.items()
                                         if k not in shape_fields})
    return _Soak(config, print_fn).run()


class _Soak:
    def __init__(self, config: SoakConfig, print_fn: Callable[[str], None]) -> None:
        self.config = config
        self.say = print_fn
        self.samples: list[Sample] = []
        self.progress = ProducerProgress()
        self._processed = (0.0, 0.0)  # (value, monotonic time read)
        self._lock = threading.Lock()

    def run(self) -> SoakReport:
        config = self.config
        started = time.monotonic()
        with ExitStack() as stack:
            # absolute: the worker runs in the checkout, not in this process's directory
            workdir = (config.workdir or Path(tempfile.mkdtemp(prefix="streamrec-soak-"))
                       ).resolve()
            workdir.mkdir(parents=True, exist_ok=True)
            if not config.keep_workdir:
                stack.callback(shutil.rmtree, workdir, True)
            broker_pid = None
            broker_url = config.broker_url
            if broker_url is None:
                broker = start_broker()
                stack.callback(broker.stop)
                broker_url, broker_pid = broker.url, broker.process.pid
            settings = self._settings(broker_url, workdir)
            create_topics(settings)
            self.metrics_url = f"http://127.0.0.1:{settings.web_port}/metrics"
            log_path = workdir / "worker.log"
            worker = start_worker(settings, log_path)
            stack.callback(stop_process, worker, STOP_TIMEOUT_S)
            self.say(f"[soak] workdir {workdir}; worker pid {worker.pid}; broker {broker_url}")
            wait_until_ready(worker, settings, log_path, timeout_s=180.0, interval_s=0.5)
            stop = threading.Event()
            stack.callback(stop.set)
            producer = threading.Thread(
                target=produce_closed_loop,
                args=(settings, synthetic_events(config.shape), self.processed, self.progress),
                kwargs={"max_backlog": config.max_backlog, "stop": stop.is_set},
                name="soak-producer", daemon=True,
            )
            producer.start()
            self._sample_until_drained(settings, worker, broker_pid, workdir, started)
            stop.set()
            producer.join(timeout=60)
            stop_process(worker, STOP_TIMEOUT_S)
            record_sizes = user_record_sizes(settings.data_dir)
        report = SoakReport(
            config=asdict(config), samples=self.samples, record_sizes=record_sizes,
            summary=summarise(self.samples, record_sizes), elapsed_s=time.monotonic() - started,
        )
        self._print_summary(report)
        if config.json_out is not None:
            config.json_out.write_text(report.to_json())
            self.say(f"[soak] wrote {config.json_out}")
        return report

    def _settings(self, broker_url: str, workdir: Path) -> Settings:
        config = self.config
        return run_settings(
            broker_url, workdir / "state", app_id="streamrec-soak",
            topic_partitions=config.partitions, standby_replicas=0, top_k=config.top_k,
            trending_capacity=config.trending_capacity, log_level="WARNING",
        )

    def processed(self) -> float:
        """The worker's processed-event count, re-read at most every quarter second."""
        with self._lock:
            value, read_at = self._processed
            if time.monotonic() - read_at >= 0.25:
                fresh = processed_events(scrape(self.metrics_url))
                value = fresh if fresh is not None else value
                self._processed = (value, time.monotonic())
            return value

    def _users_at(self, events: float) -> int:
        """Regular users introduced by the time the stream reached position ``events``."""
        points = list(self.progress.checkpoints)
        index = bisect.bisect_right(points, (int(events), sys.maxsize)) - 1
        return points[max(index, 0)][1]

    def _sample_until_drained(self, settings: Settings, worker: subprocess.Popen[bytes],
                              broker_pid: int | None, workdir: Path, started: float) -> None:
        config = self.config
        self.say(f"{'time s':>7} {'users':>9} {'events':>9} {'ev/s':>7} "
                 f"{'worker MB':>9} {'broker MB':>9} {'disk MB':>8} {'B/user':>7} "
                 f"{'keys est':>9}")
        last_events, last_time = 0.0, time.monotonic()
        drained_at: float | None = None
        done_at: float | None = None
        next_sample = time.monotonic() + config.sample_every_s
        while True:
            time.sleep(max(0.0, next_sample - time.monotonic()))
            next_sample += config.sample_every_s
            if worker.poll() is not None:
                raise SoakError(f"the worker died ({worker.returncode}); see "
                                f"{workdir / 'worker.log'}")
            metrics = scrape(self.metrics_url)
            events = processed_events(metrics) or last_events
            now = time.monotonic()
            worker_rss = rss_bytes(worker.pid) or 0
            broker_rss = rss_bytes(broker_pid) if broker_pid else None
            users = self._users_at(events)
            sample = Sample(
                elapsed_s=round(now - started, 1), users=users, events=int(events),
                events_per_s=round((events - last_events) / max(now - last_time, 1e-9), 1),
                worker_rss_mb=round(worker_rss / MB, 1),
                broker_rss_mb=round(broker_rss / MB, 1) if broker_rss else None,
                disk_mb=round(disk_bytes(settings.data_dir) / MB, 1),
                state_users_estimate=int(metrics.get("streamrec_state_users", 0)),
            )
            self.samples.append(sample)
            last_events, last_time = events, now
            per_user = sample.disk_mb * MB / users if users else 0
            self.say(f"{sample.elapsed_s:7.0f} {users:9d} {sample.events:9d} "
                     f"{sample.events_per_s:7.0f} {sample.worker_rss_mb:9.0f} "
                     f"{sample.broker_rss_mb or 0:9.0f} {sample.disk_mb:8.0f} "
                     f"{per_user:7.0f} {sample.state_users_estimate:9d}")
            if not self.progress.done:
                continue
            done_at = done_at or now
            if events >= self.progress.sent:
                if drained_at is not None:  # one more sample after draining, then stop
                    return
                drained_at = now
            elif now - done_at > config.drain_timeout_s:
                raise SoakError(f"the worker processed {events:.0f} of "
                                f"{self.progress.sent} events within "
                                f"{config.drain_timeout_s:.0f}s of the producer finishing")

    def _print_summary(self, report: SoakReport) -> None:
        self.say("[soak] summary:")
        for key, value in report.summary.items():
            self.say(f"[soak]   {key}: {value}")
        self.say(f"[soak]   per-user records: {report.record_sizes}")


def user_record_sizes(data_dir: Path) -> dict[str, Any]:
    """Sizes of the stored per-user records (read-only, after the worker stopped), for
    regular and heavy users, and the bounded containers of the largest heavy user."""
    import rocksdict

    from streams.state.batch import UserRecord

    regular: list[int] = []
    heavy: list[int] = []
    largest: tuple[int, bytes] = (0, b"")
    for path in sorted(data_dir.rglob("users-*.db")):
        db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True),
                             access_type=rocksdict.AccessType.read_only())
        try:
            for key, value in db.items():
                if not isinstance(key, bytes) or not isinstance(value, bytes):
                    continue  # raw mode: always bytes
                if key.startswith(b"__faust"):
                    continue
                if key.startswith(HEAVY_PREFIX.encode()):
                    heavy.append(len(value))
                    largest = max(largest, (len(value), value))
                else:
                    regular.append(len(value))
        finally:
            db.close()
    result: dict[str, Any] = {
        "regular_users": len(regular), "heavy_users": len(heavy),
        "regular_bytes_mean": round(statistics.fmean(regular), 1) if regular else None,
        "regular_bytes_max": max(regular, default=None),
        "heavy_bytes_mean": round(statistics.fmean(heavy), 1) if heavy else None,
        "heavy_bytes_max": max(heavy, default=None),
    }
    if largest[1]:
        state = UserRecord.from_bytes(largest[1]).state
        result["largest_heavy_user"] = {
            "events_applied": state.events_applied, "recent": len(state.recent),
            "recent_event_ids": len(state.recent_event_ids), "purchased": len(state.purchased),
        }
    return result


def summarise(samples: list[Sample], record_sizes: dict[str, Any]) -> dict[str, Any]:
    """Does RSS / events/s level off, and does disk grow in proportion to users?"""
    loaded = [s for s in samples if s.users > 0]
    if len(loaded) < 8:
        return {"note": "too few samples to judge"}
    final = loaded[-1]

    def at(fraction: float) -> Sample:
        return next(s for s in loaded if s.users >= fraction * final.users)

    last_quarter = [s for s in loaded if s.users >= 0.75 * final.users]
    steady = loaded[len(loaded) // 10:]  # skip the warm-up tenth
    thirds = [steady[i * len(steady) // 3:(i + 1) * len(steady) // 3] for i in range(3)]
    return {
        "users_processed": final.users,
        "events_processed": final.events,
        "worker_rss_mb_at_25_50_75_100_pct_users": [
            at(f).worker_rss_mb for f in (0.25, 0.5, 0.75, 1.0)],
        "worker_rss_mb_growth_last_quarter": round(
            max(s.worker_rss_mb for s in last_quarter) - last_quarter[0].worker_rss_mb, 1),
        "worker_rss_mb_max": max(s.worker_rss_mb for s in samples),
        "events_per_s_median_by_third": [
            round(statistics.median(s.events_per_s for s in t), 1) for t in thirds],
        "disk_bytes_per_user_by_third": [
            round(statistics.median(s.disk_mb * MB / s.users for s in t)) for t in thirds],
        "disk_mb_final": final.disk_mb,
        "broker_rss_mb_final": final.broker_rss_mb,
        "stored_bytes_per_regular_user": record_sizes.get("regular_bytes_mean"),
    }
