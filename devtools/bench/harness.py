"""One measured run of one system: topics, start, ready, backlog, freshness, stop.

A run, identical for every system:

1. fresh topics (``<tag>.views`` ...) on the shared broker, a fresh app id and data dir;
2. start the system's processes; send a probe of 200 events and wait until every process
   is ready and the probe came out of the end of the pipeline (the group has joined, the
   model is loaded and warm);
3. **backlog**: send the workload's ``n`` events as one burst (stamped with the send time,
   keyed by event id) while sampling progress every 0.2 s until all ``n`` are processed;
   sustained figures run from the first backlog event taken to the last one finished
   (:func:`measure.sustained` says why not the middle 80 %);
4. read peak RSS, stop the processes, delete the run's topics and state;
5. **freshness** (systems with output), on a second instance started as in 1–2: offer new
   events at ``load_fraction`` × the rate just measured for ``freshness_s`` seconds, read
   the recommendations back with a separate consumer, stop and clean up as in 4.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from devtools.bench import stages
from devtools.bench.measure import (
    MeasurementError,
    Sample,
    first_output_s,
    rate_series,
    sustained,
)
from devtools.bench.report import freshness_fields
from devtools.bench.systems import NaiveSystem, StreamrecSystem, System, SystemExitedError
from devtools.bench.traffic import OutputReader, offer, send_all
from devtools.isolation import isolated_settings
from devtools.processes import spawn, stop_process
from devtools.producers import send_raw
from streams.errors import StreamrecError
from streams.kafka.topics import create_topics, topic_specs
from streams.settings import Settings

log = logging.getLogger(__name__)

PROBE_EVENTS = 200


@dataclass(frozen=True)
class RunPlan:
    broker_url: str
    partitions: int
    model_dir: Path
    workdir: Path
    logs: Path
    freshness_s: float
    load_fraction: float
    session_timeout_s: float = 6.0
    rebalance_timeout_s: float = 4.0
    heartbeat_s: float = 0.5
    sample_interval_s: float = 0.2
    ready_timeout_s: float = 180.0
    stall_s: float = 45.0
    catalog: tuple[dict[str, Any], ...] = ()
    """Published to the items topic before a streamrec instance starts (empty: none)."""
    stage_loads: tuple[float, ...] = ()
    """Extra freshness phases for streamrec, at these fractions of its own peak, each with
    the per-stage breakdown (``--stage-loads``)."""
    stage_rates: tuple[float, ...] = ()
    """Extra freshness phases for streamrec at these fixed rates (events/s), each with the
    per-stage breakdown (``--stage-rates``): comparable across runs on a busy machine, where
    the measured peak (and so every ``--stage-loads`` rate) moves."""
    key_by: str = "event"
    """What the load generator keys events by: ``event`` or ``user`` (``--key-by``)."""


def run_settings(plan: RunPlan, tag: str, partitions: int, *, data_dir: Path | None = None
                 ) -> Settings:
    """streamrec settings naming this run's topics (``<tag>.views`` ...), app id
    (``bench-<tag>``), directories and a free web port."""
    return isolated_settings(
        plan.broker_url, data_dir or plan.workdir / tag / "state", tag,
        app_id=f"bench-{tag}",
        topic_partitions=partitions,
        model_dir=plan.model_dir,
        broker_session_timeout_s=plan.session_timeout_s,
        broker_rebalance_timeout_s=plan.rebalance_timeout_s,
        broker_heartbeat_interval_s=plan.heartbeat_s,
    )


def make_system(plan: RunPlan, name: str, tag: str, workers: int, partitions: int
                ) -> tuple[Settings, System]:
    settings = run_settings(plan, tag, partitions)
    if name.startswith("streamrec"):
        per_worker = [
            settings if i == 0 else run_settings(
                plan, tag, partitions, data_dir=plan.workdir / tag / f"state-{i}")
            for i in range(workers)
        ]
        per_worker = [s.model_copy(update={"worker_id": f"w{i}"})
                      for i, s in enumerate(per_worker)]
        return settings, StreamrecSystem.create(name, per_worker, plan.logs)
    mode = "baseline" if name == "baseline" else "ceiling"
    model = plan.model_dir if mode == "baseline" else None
    return settings, NaiveSystem.create(mode, settings, model, plan.workdir, plan.logs)


def _say(text: str) -> None:
    print(f"[bench] {text}", flush=True)


class Profiler:
    """py-spy attached to one process from ``start`` to ``stop``."""

    def __init__(self, pid: int, path: Path, fmt: str) -> None:
        venv_spy = Path(sys.executable).parent / "py-spy"  # installed beside streamrec
        spy = str(venv_spy) if venv_spy.exists() else shutil.which("py-spy")
        if spy is None:
            raise StreamrecError(
                "--profile needs py-spy: pip install 'streamrec[dev]' (or pip install py-spy)"
            )
        self.path = path
        self.popen = spawn(
            [spy, "record", "-f", fmt, "-o", str(path), "-p", str(pid), "--rate", "100"],
            path.with_suffix(".log"))

    def stop(self) -> None:
        stop_process(self.popen, 30.0, signum=signal.SIGINT)  # py-spy saves on SIGINT


def _wait_catalog(system: StreamrecSystem, plan: RunPlan, items: int) -> None:
    """Until every worker has embedded and indexed the whole catalogue: reading and
    embedding it once at first start is not the per-event cost being measured."""
    deadline = time.monotonic() + plan.ready_timeout_s
    while not system.catalog_indexed(items):
        system.check()
        if time.monotonic() > deadline:
            raise MeasurementError(f"catalogue of {items} items not indexed within "
                                   f"{plan.ready_timeout_s:.0f}s; see {plan.logs}")
        time.sleep(plan.sample_interval_s)


def _wait_ready(system: System, plan: RunPlan, probe_events: int) -> Sample:
    deadline = time.monotonic() + plan.ready_timeout_s
    while True:
        system.check()
        r = system.poll()
        if r.ready and r.events >= probe_events:
            return Sample(r.t, r.inputs, r.events, r.recs, r.cpu_s, True)
        if time.monotonic() > deadline:
            raise MeasurementError(
                f"{system.name} not ready within {plan.ready_timeout_s:.0f}s "
                f"(ready={r.ready}, probe {r.events:.0f}/{probe_events}); see {plan.logs}")
        time.sleep(plan.sample_interval_s)


def _consume_backlog(system: System, plan: RunPlan, n: int, base: Sample) -> list[Sample]:
    samples: list[Sample] = []
    last_progress = time.monotonic()
    while True:
        system.check()
        r = system.poll()
        sample = Sample(r.t, r.inputs - base.inputs, r.events - base.events,
                        r.recs - base.recs, r.cpu_s, r.ready)
        if not samples or sample.t > samples[-1].t:
            if samples and sample.events > samples[-1].events:
                last_progress = time.monotonic()
            samples.append(sample)
        if sample.events >= n:
            return samples
        if time.monotonic() - last_progress > plan.stall_s:
            _say(f"{system.name}: no progress for {plan.stall_s:.0f}s at "
                 f"{sample.events:.0f}/{n} events; giving up on this run")
            return samples
        time.sleep(plan.sample_interval_s)


def _freshness(system: System, settings: Settings, plan: RunPlan, rate: float,
               pool: Sequence[dict[str, Any]], tag: str) -> dict[str, Any]:
    prefix = f"f{tag}-"
    reader = OutputReader(settings, settings.topic_recommendations, prefix)
    reader.start()
    try:
        before = system.poll()
        phase_start = time.monotonic()
        sent = offer(settings, pool, rate, plan.freshness_s, prefix, key_by=plan.key_by)
        # drain: until the system processed everything offered and the output went quiet
        deadline = time.monotonic() + max(30.0, 3 * plan.freshness_s)
        matched, quiet_since = reader.matched(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            system.check()
            done = system.poll().events - before.events >= sent
            if reader.matched() != matched:
                matched, quiet_since = reader.matched(), time.monotonic()
            elif done and time.monotonic() - quiet_since > 1.5:
                break
        after = system.poll()
    finally:
        reader.stop()
    values = list(reader.freshness_s)
    over_time = [(round(t - phase_start, 2), round(v * 1000, 1))
                 for t, v in zip(reader.received_s, values, strict=False)]
    step = max(1, len(over_time) // 400)
    return {
        "offered_events_per_s": round(rate, 1),
        "offered_events": sent,
        "processed_events": after.events - before.events,
        "recommendations_read": len(values),
        "reader_records": reader.read,
        "reader_error": None if reader.error is None else repr(reader.error),
        "reader_consumer_errors": reader.errors,
        "reader_start_offsets": reader.start_offsets,
        **freshness_fields(values),
        "freshness_ms_values": _thin(sorted(values), 4000),
        "freshness_over_time": over_time[::step],
    }


def _staged(system: System, fraction: float | None, phase: Callable[[], dict[str, Any]],
            rate: float | None = None) -> dict[str, Any]:
    """Run one freshness phase; for streamrec add where the time went (its stage
    histograms, differenced over the phase). ``rate``: the phase ran at that fixed rate
    (``--stage-rates``; ``fraction`` is then what it was of this run's peak)."""
    if not isinstance(system, StreamrecSystem):
        return phase()
    ports = [s.web_port for s in system.worker_settings]
    before = stages.snapshot(ports)
    figures = phase()
    after = stages.snapshot(ports)
    figures["load_fraction"] = fraction
    if rate is not None:
        figures["load_rate"] = rate
    figures["stages"] = stages.summarise(stages.difference(after, before))
    return figures


def _thin(ordered: list[float], most: int) -> list[float]:
    """At most ``most`` evenly spaced values of a sorted list, in ms (for the CDF plot)."""
    if len(ordered) > most:
        step = (len(ordered) - 1) / (most - 1)
        ordered = [ordered[round(i * step)] for i in range(most)]
    return [round(v * 1000, 1) for v in ordered]


@contextlib.contextmanager
def _instance(plan: RunPlan, name: str, tag: str, workers: int, partitions: int,
              probe: Sequence[dict[str, Any]]) -> Iterator[tuple[Settings, System, Sample]]:
    """A started, ready and warm instance on fresh topics; stopped and cleaned up after."""
    (plan.workdir / tag).mkdir(parents=True, exist_ok=True)
    settings, system = make_system(plan, name, tag, workers, partitions)
    create_topics(settings)
    if name == "streamrec" and plan.catalog:
        send_raw(settings, [(settings.topic_items, r["item_id"].encode(), orjson.dumps(r))
                            for r in plan.catalog])
    try:
        system.start()
        if isinstance(system, StreamrecSystem) and name == "streamrec" and plan.catalog:
            _wait_catalog(system, plan, len(plan.catalog))
        send_all(settings, probe, id_prefix=f"w{tag}-", key_by=plan.key_by)
        yield settings, system, _wait_ready(system, plan, len(probe))
    finally:
        system.stop()
        _cleanup(settings, plan.workdir / tag)


def run_once(plan: RunPlan, name: str, run_index: int, backlog: Sequence[dict[str, Any]],
             probe: Sequence[dict[str, Any]], pool: Sequence[dict[str, Any]], *,
             workers: int = 1, partitions: int | None = None, freshness: bool = True,
             profile: Path | None = None, profile_format: str = "speedscope"
             ) -> dict[str, Any]:
    """Measure one system once; returns the run's figures (``error`` set on failure).

    The freshness phase runs on a second, fresh instance (new topics, warmed by the probe):
    after a 100k backlog the embedded broker stopped serving the baseline's output topic to
    other consumers, and the backlog's after-effects (Faust commits of a long backlog taking
    tens of seconds) are not what "freshness at 50 % load" should measure."""
    tag = f"{name}-r{run_index}-w{workers}-{uuid.uuid4().hex[:6]}"
    partitions = max(partitions or plan.partitions, workers)
    result: dict[str, Any] = {"system": name, "run": run_index, "workers": workers,
                              "tag": tag, "partitions": partitions}
    try:
        started = time.monotonic()
        with _instance(plan, name, tag, workers, partitions, probe) as (settings, system,
                                                                         base):
            result["startup_s"] = round(time.monotonic() - started, 2)
            samples, burst_s = _backlog(plan, settings, system, base, backlog, profile,
                                        profile_format)
            rss = system.peak_rss_bytes()
            if isinstance(system, StreamrecSystem):
                result["stage_costs"] = system.stage_costs()
        result["backlog_send_s"] = round(burst_s, 3)
        result["first_output_s"] = first_output_s(samples)
        result["timeline"] = [(round(t, 2), round(v, 1)) for t, v in rate_series(samples)]
        window = sustained(samples, len(backlog))
        result.update(window.to_json())
        try:
            result["events_per_s_mid80"] = round(
                sustained(samples, len(backlog), 0.1, 0.9).events_per_s, 1)
        except MeasurementError:
            result["events_per_s_mid80"] = None
        if freshness and name != "ceiling" and plan.freshness_s > 0:
            with _instance(plan, name, f"{tag}-f", workers, partitions, probe) as (
                    settings, system, _base):
                result.update(_staged(system, plan.load_fraction, lambda: _freshness(
                    system, settings, plan, plan.load_fraction * window.events_per_s, pool,
                    tag)))
                if isinstance(system, StreamrecSystem) and plan.stage_loads:
                    result["load_profile"] = [
                        _staged(system, fraction, functools.partial(
                            _freshness, system, settings, plan,
                            fraction * window.events_per_s, pool, f"{tag}-{fraction:g}"))
                        for fraction in plan.stage_loads]
                if isinstance(system, StreamrecSystem) and plan.stage_rates:
                    result.setdefault("load_profile", []).extend(
                        _staged(system, rate / window.events_per_s, functools.partial(
                            _freshness, system, settings, plan, rate, pool,
                            f"{tag}-r{rate:g}"), rate=rate)
                        for rate in plan.stage_rates)
                rss = max(rss, system.peak_rss_bytes())
        result["peak_rss_mib"] = round(rss / 2**20, 1)
    except (MeasurementError, SystemExitedError, RuntimeError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def profile_live(plan: RunPlan, probe: Sequence[dict[str, Any]],
                 pool: Sequence[dict[str, Any]], rate: float, path: Path, fmt: str
                 ) -> dict[str, Any]:
    """One streamrec freshness phase at ``rate`` events/s with py-spy attached to the
    worker (``--profile-rate``): where a live worker's time goes, in the small micro-batches
    of a steady load, which a backlog's profile (full micro-batches) does not show. Returns
    the phase's figures (``error`` set on failure)."""
    tag = f"streamrec-live-{uuid.uuid4().hex[:6]}"
    result: dict[str, Any] = {"system": "streamrec", "run": 0, "workers": 1, "tag": tag}
    try:
        with _instance(plan, "streamrec", tag, 1, plan.partitions, probe) as (
                settings, system, _base):
            profiler = Profiler(system.pids()[0], path, fmt)
            try:
                result.update(_staged(system, None, functools.partial(
                    _freshness, system, settings, plan, rate, pool, tag), rate=rate))
            finally:
                profiler.stop()
            result["peak_rss_mib"] = round(system.peak_rss_bytes() / 2**20, 1)
    except (MeasurementError, SystemExitedError, RuntimeError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def _backlog(plan: RunPlan, settings: Settings, system: System, base: Sample,
             backlog: Sequence[dict[str, Any]], profile: Path | None, profile_format: str
             ) -> tuple[list[Sample], float]:
    """Send the backlog in one burst and sample until it is processed (py-spy attached
    meanwhile when ``profile`` is set). Returns the samples and the burst's seconds."""
    profiler = Profiler(system.pids()[0], profile, profile_format) if profile else None
    try:
        burst: dict[str, float] = {}
        sender = threading.Thread(
            target=lambda: burst.update(
                seconds=send_all(settings, backlog, key_by=plan.key_by)),
            daemon=True)
        sender.start()
        samples = _consume_backlog(system, plan, len(backlog), base)
        sender.join()
    finally:
        if profiler is not None:
            profiler.stop()
    return samples, burst.get("seconds", float("nan"))


def _cleanup(settings: Settings, directory: Path) -> None:
    """Delete the run's topics (Tansu keeps everything in memory) and its state."""
    from confluent_kafka.admin import AdminClient

    from streams.kafka.clients import librdkafka_config

    shutil.rmtree(directory, ignore_errors=True)
    try:
        admin = AdminClient(librdkafka_config(settings, log_level=3))
        metadata = admin.list_topics(timeout=10)
        prefixes = (settings.app_id, settings.topic_views.rsplit(".", 1)[0] + ".")
        names = [t for t in metadata.topics if t.startswith(prefixes)]
        names += [s.name for s in topic_specs(settings) if s.name not in names]
        for future in admin.delete_topics(names, operation_timeout=10).values():
            # best effort: a topic Faust never created, or a slow broker
            with contextlib.suppress(Exception):
                future.result(timeout=15)
    except Exception as exc:  # never let clean-up hide the run's own result
        log.warning("could not delete the run's topics: %s", exc)
