"""A real Prometheus scrapes a real worker: the series move, the repo's rules evaluate.

Debian's ``prometheus`` server runs on loopback with a generated configuration: it scrapes
the worker's ``/metrics`` every second as job ``streamrec-worker`` and loads
``deploy/prometheus/rules/streamrec.rules.yml``. The worker runs without a model (trending
fallbacks) and logs JSON at DEBUG; events for known user ids, and a few malformed messages,
are published with confluent-kafka. The tests then ask Prometheus's HTTP API, and read the
worker's log file line by line.
"""

from __future__ import annotations

import math
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from devtools.broker import EmbeddedBroker
from devtools.processes import free_port, spawn, stop_process
from streams.kafka.clients import librdkafka_config
from streams.kafka.topics import create_topics
from streams.settings import Settings
from tests.deploy.support import RULES_FILE, WORKER_JOB, find_tool, worker_exposition
from tests.support import WorkerProcess, isolated_settings, wait_for

# Distinctive ids, so that finding one in a log line means it was logged.
USERS = tuple(f"scrape-user-{n}-5c1e" for n in range(8))
TYPES = ("view", "click", "add_to_cart", "purchase")
REJECTED_EVENT_ID = "scrape-bad-type"
# (topic attribute of Settings, value, reason)
MALFORMED = [
    ("topic_views", b"{not json", "invalid_json"),
    ("topic_clicks", b'{"event_type": "click"}', "missing_field"),
    ("topic_views", orjson.dumps({"event_id": REJECTED_EVENT_ID, "event_type": "teleport",
                                  "user_id": USERS[0], "item_id": "i-1", "timestamp": 0}),
     "unknown_event_type"),
]
SCRAPE_INTERVAL_S = 1
INFO_OR_ABOVE = {"INFO", "WARNING", "ERROR", "CRITICAL"}


@dataclass
class PrometheusServer:
    """Debian's Prometheus on a free loopback port, with its own data directory."""

    binary: str
    workdir: Path
    target: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def start(self) -> PrometheusServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s",
                       "scrape_timeout": f"{SCRAPE_INTERVAL_S}s",
                       "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
            "rule_files": [str(RULES_FILE)],
            "scrape_configs": [{"job_name": WORKER_JOB, "metrics_path": "/metrics",
                                "static_configs": [{"targets": [self.target]}]}],
        }
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self.process = spawn(
            [self.binary, f"--config.file={config_path}",
             f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            self.log_path,
        )
        return self

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.process.returncode}:\n"
                                     + self.log_path.read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_for(ready, timeout_s, "prometheus /-/ready")

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=5) as resp:
            body = orjson.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector result of ``expr`` now: [{"metric": {...}, "value": [t, "v"]}]."""
        return list(self.api("query", query=expr)["result"])

    def values(self, expr: str, by: str) -> dict[str, float]:
        return {s["metric"].get(by, ""): float(s["value"][1]) for s in self.query(expr)}

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout_s=10)


class Traffic:
    """Waves of one valid event per user, the malformed messages in the first wave."""

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Producer

        self.settings = settings
        self.producer = Producer(librdkafka_config(settings, **{"linger.ms": 5}))
        self.waves = 0
        self.last_wave = 0.0

    def tick(self, every_s: float = 0.5) -> None:
        if time.monotonic() - self.last_wave < every_s:
            return
        now_ms = int(time.time() * 1000)
        for n, user in enumerate(USERS):
            event_type = TYPES[(n + self.waves) % len(TYPES)]
            event = {"event_id": f"scrape-{self.waves}-{n}", "event_type": event_type,
                     "user_id": user, "item_id": f"item-{(n * 3 + self.waves) % 20:03d}",
                     "timestamp": now_ms, "session_id": f"session-{n}"}
            self.producer.produce(self.settings.topic_for(event_type),
                                  key=user.encode(), value=orjson.dumps(event))
        if self.waves == 0:
            for attribute, value, _reason in MALFORMED:
                self.producer.produce(getattr(self.settings, attribute), value=value)
        assert self.producer.flush(10) == 0, "events were not delivered"
        self.waves += 1
        self.last_wave = time.monotonic()


@dataclass
class Stack:
    settings: Settings
    worker: WorkerProcess
    prometheus: PrometheusServer

    def wait_for_query(self, expr: str, what: str, timeout_s: float = 20.0,
                       check: Any = bool) -> list[dict[str, Any]]:
        last: list[list[dict[str, Any]]] = [[]]

        def satisfied() -> list[dict[str, Any]]:
            last[0] = self.prometheus.query(expr)
            return last[0] if last[0] and check(last[0]) else []

        try:
            return wait_for(satisfied, timeout_s, what, interval_s=0.25)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n  query: {expr}\n  last result: {last[0]}\n"
                                 f"  worker log tail:\n{self.worker.log_tail(15)}") from None


SETTINGS_RULES = '[{"rule_id": "scrape-promo", "kind": "boost", "brands": ["x"], "factor": 2}]'


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = find_tool("prometheus")
    tmp = tmp_path_factory.mktemp("scrape")
    # One rule from settings: its rule_applied series exists from start-up (series of rules
    # published later appear when they first apply).
    settings = isolated_settings(broker.url, tmp, model_dir=None, log_format="json",
                                 log_level="DEBUG", rules=SETTINGS_RULES)
    create_topics(settings)
    worker = WorkerProcess(settings, tmp / "worker.log").start()
    prometheus = PrometheusServer(binary, tmp / "prometheus",
                                  target=f"127.0.0.1:{settings.web_port}").start()
    try:
        worker.wait_ready()
        prometheus.wait_ready()
        running = Stack(settings, worker, prometheus)
        # Scraped once before any event, so every counter's first increase is seen.
        running.wait_for_query(f'streamrec_ready{{job="{WORKER_JOB}"}} == 1', "a ready scrape")
        traffic = Traffic(settings)

        def counted() -> bool:
            traffic.tick()
            return bool(prometheus.query(
                "sum(rate(streamrec_events_consumed_total[1m])) > 0"
                " and sum(rate(streamrec_recommendations_emitted_total[1m])) > 0"))

        wait_for(counted, 30, "Prometheus to see events consumed and recommendations emitted",
                 interval_s=0.25)
        traffic.producer.flush(5)
        worker.get(f"/users/{USERS[1]}")  # must not put the user id in the log either
        yield running
    finally:
        prometheus.stop()
        worker.stop()


def test_the_worker_is_up_ready_and_its_counters_move(stack: Stack) -> None:
    job = f'job="{WORKER_JOB}"'
    stack.wait_for_query(f"up{{{job}}} == 1", "up == 1")
    stack.wait_for_query(f"streamrec_ready{{{job}}} == 1", "streamrec_ready == 1")
    stack.wait_for_query(f"sum(rate(streamrec_events_consumed_total{{{job}}}[1m])) > 0",
                         "events consumed rate > 0")
    rates = stack.prometheus.values(
        f"sum by (event_type) (rate(streamrec_events_consumed_total{{{job}}}[1m]))",
        by="event_type")
    assert set(rates) == {*TYPES, "invalid"}, rates
    stack.wait_for_query(f"sum(rate(streamrec_recommendations_emitted_total{{{job}}}[1m])) > 0",
                         "recommendations emitted rate > 0")
    stack.wait_for_query(f"streamrec_freshness_seconds_count{{{job}}} > 0",
                         "freshness observations")
    stack.wait_for_query(f"streamrec_state_users{{{job}}} > 0", "users in state")
    stack.wait_for_query(f"streamrec_state_disk_bytes{{{job}}} > 0", "state bytes on disk")
    stack.wait_for_query(f"streamrec_rebalances_total{{{job}}} >= 1", "a rebalance counted")


def test_dead_letters_are_counted_by_reason(stack: Stack) -> None:
    expected = {reason: 1.0 for *_x, reason in MALFORMED}
    expr = f'sum by (reason) (streamrec_dead_letters_total{{job="{WORKER_JOB}"}}) > 0'
    stack.wait_for_query(expr, "dead letters by reason",
                         check=lambda r: {s["metric"]["reason"] for s in r} == set(expected))
    assert stack.prometheus.values(expr, by="reason") == expected
    assert stack.prometheus.values(
        "sum by (reason) (increase(streamrec_events_rejected_total[5m])) > 0", by="reason"
    ).keys() == expected.keys()


def test_lag_is_reported_per_held_partition_and_drains_to_zero(stack: Stack) -> None:
    settings = stack.settings
    watched = {*settings.input_topics, settings.topic_user_erasure,
               settings.topic_events_by_user}
    expected = {(topic, str(p)) for topic in watched for p in range(settings.topic_partitions)}

    def all_held_and_zero(result: list[dict[str, Any]]) -> bool:
        held = {(s["metric"]["topic"], s["metric"]["partition"]) for s in result}
        return held == expected and all(float(s["value"][1]) == 0 for s in result)

    stack.wait_for_query("streamrec_consumer_lag_messages", "lag 0 on every held partition",
                         check=all_held_and_zero)


def test_every_recording_rule_evaluates_to_a_number(stack: Stack) -> None:
    rules = yaml.safe_load(RULES_FILE.read_text())
    records = [r["record"] for group in rules["groups"] for r in group["rules"] if "record" in r]
    assert len(records) >= 10
    for record in records:
        stack.wait_for_query(
            record, f"recording rule {record}",
            check=lambda r: all(math.isfinite(float(s["value"][1])) for s in r))

    def every_rule_healthy() -> list[dict[str, Any]]:
        groups = stack.prometheus.api("rules")["groups"]
        loaded = [rule for group in groups for rule in group["rules"]]
        return loaded if all(rule["health"] == "ok" for rule in loaded) else []

    loaded = wait_for(every_rule_healthy, 10, "every rule evaluated without error")
    assert len(loaded) == sum(len(g["rules"]) for g in rules["groups"])


def test_the_fallback_alert_goes_pending_without_a_model(stack: Stack) -> None:
    stack.wait_for_query(
        'ALERTS{alertname="StreamrecFallbackRateHigh", alertstate="pending"}',
        "StreamrecFallbackRateHigh pending (every recommendation is a no_model fallback)")
    reasons = stack.prometheus.values("sum by (reason) (streamrec_fallbacks_total) > 0",
                                      by="reason")
    assert "no_model" in reasons, reasons


def test_the_live_exposition_has_every_metric_of_the_contract(stack: Stack) -> None:
    with urllib.request.urlopen(stack.worker.base_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    live = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert live == set(worker_exposition().sample_names)


def test_the_worker_log_is_json_with_batch_lines_rejections_and_no_user_ids(
    stack: Stack,
) -> None:
    text = stack.worker.log_path.read_text(errors="replace")
    complete = text[: text.rfind("\n") + 1].splitlines()
    records = []
    for number, line in enumerate(complete, 1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            pytest.fail(f"worker log line {number} is not JSON: {line[:300]!r}")
        assert isinstance(record, dict) and {"ts", "level", "logger", "message"} <= set(record)
        records.append(record)

    batch_lines = [r for r in records if r["level"] == "DEBUG"
                   and r["logger"] == "streams.state.agent"
                   and re.match(r"partition \d+: \d+ events", r["message"])]
    assert batch_lines, "no per-batch DEBUG line from the state agent"

    # The event id and reason, as extra fields or in the message text.
    (rejected,) = [r for r in records if r["logger"] == "streams.ingest.agent"
                   and REJECTED_EVENT_ID in (r.get("event_id"),
                                             *re.findall(r"event_id=(\S+)", r["message"]))]
    assert rejected["level"] == "WARNING"
    assert "unknown_event_type" in (rejected.get("reason"), *re.findall(
        r"reason=(\w+)", rejected["message"]))

    leaks = [r for r in records if r["level"] in INFO_OR_ABOVE
             and any(user in orjson.dumps(r).decode() for user in USERS)]
    assert leaks == [], "raw user ids logged at INFO or above"
