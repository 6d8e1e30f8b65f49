"""The three systems under test as subprocesses, each read through the same small interface.

``poll()`` answers ``(events taken from the input topics, events fully processed,
recommendations emitted, CPU seconds, ready)`` with the moment those were true, so the
harness measures every system identically:

* **streamrec** — ``python -m streams.cli worker`` (N processes in one group), configured
  only through ``STREAMREC_*``; counts come from its ``/metrics``: events =
  ``streamrec_batch_size_events_sum`` (events through the *state* stage, the end of the
  pipeline; the ingest counter ``streamrec_events_consumed_total`` runs ahead of it while the
  internal topic buffers; it is the "taken from the input" count), recommendations =
  ``streamrec_recommendations_emitted_total``;
  ready = ``/readyz`` answers 200 on every worker. CPU is read from ``/proc`` right after.
* **baseline** / **ceiling** — :mod:`devtools.bench.naive_app`; counts, readiness and the
  process's own ``/proc/self/stat`` CPU come from the progress file it rewrites every 0.1 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.bench.procstat import TreeMeter, peak_rss_bytes
from devtools.processes import http_get, log_tail, spawn, stop_process, worker_command
from streams.settings import Settings

STATE_EVENTS_METRIC = "streamrec_batch_size_events_sum"
INGEST_EVENTS_METRIC = "streamrec_events_consumed_total"
RECS_METRIC = "streamrec_recommendations_emitted_total"


class SystemExitedError(RuntimeError):
    """A process of the system under test exited during the benchmark; the message holds
    the end of its log."""


@dataclass(frozen=True)
class Reading:
    t: float
    inputs: float
    events: float
    recs: float
    cpu_s: float
    ready: bool


@dataclass
class Proc:
    """One subprocess with its log file."""

    command: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.popen = spawn(self.command, self.log_path, env=self.env)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def check(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise SystemExitedError(
                f"{self.command[2:]} exited with {self.popen.returncode}; log "
                f"{self.log_path}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM, then SIGKILL of its whole process group after ``timeout_s``."""
        if self.popen is not None:
            stop_process(self.popen, timeout_s)


@dataclass
class System:
    """Base: a named set of processes."""

    name: str
    procs: list[Proc] = field(default_factory=list)

    def start(self) -> None:
        for proc in self.procs:
            proc.start()
        self._meter = TreeMeter([p.pid for p in self.procs])

    def check(self) -> None:
        for proc in self.procs:
            proc.check()

    def poll(self) -> Reading:
        raise NotImplementedError

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def peak_rss_bytes(self) -> int:
        return peak_rss_bytes(self.pids())

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


def metrics_url(port: int, names: tuple[str, ...]) -> str:
    """The worker's ``/metrics`` restricted to ``names`` (``?name[]=``): the poll every
    0.1-0.2 s would otherwise have the worker render every family, a few per cent of its
    CPU (py-spy, 2026-12-08)."""
    return f"http://127.0.0.1:{port}/metrics?" + urllib.parse.urlencode(
        [("name[]", name) for name in names])


def metric_sums(text: str, names: tuple[str, ...]) -> dict[str, float]:
    """Sum every sample of each named metric (over all label sets) in Prometheus text."""
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name_end = min((i for i in (line.find("{"), line.find(" ")) if i >= 0), default=-1)
        name = line[:name_end]
        if name in names:
            sums[name] = sums.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return sums


@dataclass
class StreamrecSystem(System):
    """``streamrec worker`` processes of one consumer group."""

    worker_settings: list[Settings] = field(default_factory=list)
    events_metric: str = STATE_EVENTS_METRIC
    _ready_seen: bool = False

    @classmethod
    def create(cls, name: str, worker_settings: list[Settings], logs: Path) -> StreamrecSystem:

        procs = [
            Proc(worker_command(), {**os.environ, **s.to_env(), "PYTHONUNBUFFERED": "1"},
                 logs / f"{s.app_id}-{s.worker_id}.log")
            for s in worker_settings
        ]
        return cls(name=name, procs=procs, worker_settings=worker_settings)

    def catalog_indexed(self, items: int) -> bool:
        """Whether every worker's text index holds ``items`` items."""
        for settings in self.worker_settings:
            names = ("streamrec_catalog_indexed_items",)
            status, body = http_get(metrics_url(settings.web_port, names))
            indexed = metric_sums(body.decode(), names) \
                if status == 200 else {}
            if indexed.get("streamrec_catalog_indexed_items", 0.0) < items:
                return False
        return True

    def stage_costs(self) -> dict[str, float | None]:
        """Microseconds per recommendation spent in the ranking layer, and per scored user
        in the model call, from the workers' own histograms (sums over the run)."""
        names = ("streamrec_ranking_seconds_sum", "streamrec_scoring_batch_seconds_sum",
                 "streamrec_scoring_batch_users_sum", RECS_METRIC)
        totals = dict.fromkeys(names, 0.0)
        for settings in self.worker_settings:
            status, body = http_get(metrics_url(settings.web_port, names))
            if status == 200:
                for name, value in metric_sums(body.decode(), names).items():
                    totals[name] += value

        def per(seconds: str, count: str) -> float | None:
            return (round(totals[seconds] / totals[count] * 1e6, 1) if totals[count]
                    else None)

        return {"ranking_us_per_rec": per("streamrec_ranking_seconds_sum", RECS_METRIC),
                "scoring_us_per_user": per("streamrec_scoring_batch_seconds_sum",
                                           "streamrec_scoring_batch_users_sum")}

    def poll(self) -> Reading:
        inputs = events = recs = 0.0
        up = 0
        names = (STATE_EVENTS_METRIC, INGEST_EVENTS_METRIC, RECS_METRIC)
        for settings in self.worker_settings:
            status, body = http_get(metrics_url(settings.web_port, names))
            if status != 200:
                continue
            up += 1
            sums = metric_sums(body.decode(), names)
            if STATE_EVENTS_METRIC not in sums:  # an older/newer worker: fall back
                self.events_metric = INGEST_EVENTS_METRIC
            inputs += sums.get(INGEST_EVENTS_METRIC, 0.0)
            events += sums.get(self.events_metric, 0.0)
            recs += sums.get(RECS_METRIC, 0.0)
        t = time.monotonic()
        cpu = self._meter.cpu_seconds()
        if not self._ready_seen and up == len(self.worker_settings):
            self._ready_seen = all(
                http_get(f"http://127.0.0.1:{s.web_port}/readyz")[0] == 200
                for s in self.worker_settings
            )
        return Reading(t, inputs, events, recs, cpu, self._ready_seen)


@dataclass
class NaiveSystem(System):
    """A :mod:`devtools.bench.naive_app` process (``baseline`` or ``ceiling``)."""

    progress_path: Path = Path()
    _last: Reading = field(default_factory=lambda: Reading(0.0, 0.0, 0.0, 0.0, 0.0, False))
    _ready_seen: bool = False

    @classmethod
    def create(cls, mode: str, settings: Settings, model_dir: Path | None, workdir: Path,
               logs: Path) -> NaiveSystem:
        progress = workdir / f"{settings.app_id}.progress.json"
        command = [
            sys.executable, "-m", "devtools.bench.naive_app", "--mode", mode,
            "--broker", settings.broker_url, "--app-id", settings.app_id,
            "--topics", ",".join(settings.input_topics),
            "--partitions", str(settings.topic_partitions),
            "--data-dir", str(settings.data_dir), "--progress", str(progress),
            "--session-timeout", str(settings.broker_session_timeout_s),
            "--rebalance-timeout", str(settings.broker_rebalance_timeout_s),
            "--heartbeat", str(settings.broker_heartbeat_interval_s),
        ]
        if mode == "baseline":
            assert model_dir is not None
            command += ["--output", settings.topic_recommendations, "--model", str(model_dir)]
        proc = Proc(command, {**os.environ, "PYTHONUNBUFFERED": "1"},
                    logs / f"{settings.app_id}.log")
        return cls(name=mode, procs=[proc], progress_path=progress)

    def poll(self) -> Reading:
        try:
            data: dict[str, Any] = json.loads(self.progress_path.read_text())
        except (OSError, ValueError):
            return self._last
        self._ready_seen = self._ready_seen or bool(data["ready"])
        self._last = Reading(float(data["t"]), float(data["inputs"]), float(data["events"]),
                             float(data["recs"]), float(data["cpu_s"]), self._ready_seen)
        return self._last
