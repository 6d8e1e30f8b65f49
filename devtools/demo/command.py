"""``streamrec demo``: broker → topics → catalogue → events → train → publish and promote →
worker → replay → summary → live showcase (text neighbours, a new item, out of stock, a
search, a live rule) → A/B test of the model against the trending baseline.

Everything it starts it stops again, also on Ctrl-C or an error, so no process is left.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson

from devtools.broker import start_broker
from devtools.demo.ab import held_out_sessions, run_ab_test
from devtools.demo.catalog import generate_catalog, new_item
from devtools.demo.datasets import DATASETS, load_catalog, load_dataset
from devtools.demo.generator import GeneratorConfig, generate_events
from devtools.demo.live import OutputWatcher
from devtools.demo.replay import replay_in_child
from devtools.demo.showcase import Showcase
from devtools.isolation import run_settings
from devtools.processes import (
    get_json,
    start_worker,
    stop_process,
    streamrec_command,
    wait_until_ready,
)
from devtools.producers import send_raw
from streams.errors import StreamrecError
from streams.kafka.topics import create_topics
from streams.settings import Settings


class DemoError(StreamrecError):
    """A step of the demo failed: the message says which; rerun with --keep-workdir and read
    the worker log it points to."""


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=("synthetic", *DATASETS), default="synthetic")
    parser.add_argument("--data-dir", type=Path, help="folder of the --dataset files")
    parser.add_argument("--users", type=int, default=2000, help="synthetic users")
    parser.add_argument("--items", type=int, default=1000, help="synthetic catalogue size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train-fraction", type=float, default=0.6,
                        help="first part of the stream (by time) used to train the model")
    parser.add_argument("--replay-events", type=int, default=20000,
                        help="most events replayed through Kafka after training")
    parser.add_argument("--rate", type=float, default=500.0,
                        help="replay events/s (the default leaves headroom on 2 cores, which "
                             "the broker, the worker and this replay share)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs")
    parser.add_argument("--broker-url", default=None,
                        help="use this Kafka instead of starting the embedded broker")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep-workdir", action="store_true")
    parser.add_argument("--ab-shoppers", type=int, default=1000,
                        help="simulated shoppers in the closing A/B test of the model against "
                             "the trending baseline (0: skip it)")


def run_demo(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        # absolute: the worker runs in the checkout, not in this process's directory
        workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="streamrec-demo-"))).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        if not args.keep_workdir and args.workdir is None:
            import shutil

            stack.callback(shutil.rmtree, workdir, True)
        _say(f"work directory: {workdir}")

        broker_url = args.broker_url
        if broker_url is None:
            broker = start_broker()
            stack.callback(broker.stop)
            broker_url = broker.url
            _say(f"embedded Tansu broker (development only) on {broker.bootstrap}")
        settings = run_settings(broker_url, workdir / "state",
                                model_registry=workdir / "registry")
        for name, outcome in create_topics(settings).items():
            _say(f"topic {name}: {outcome}")

        catalog = _catalog(args)
        if catalog:
            send_raw(settings, [(settings.topic_items, r["item_id"].encode(), orjson.dumps(r))
                                for r in catalog])
            _say(f"published a catalogue of {len(catalog)} items to {settings.topic_items} "
                 "(the worker embeds their text as it reads them)")
        events = _events(args)
        split = int(len(events) * args.train_fraction)
        train_events, live_events = events[:split], events[split:][: args.replay_events]
        _say(f"{len(events)} events ({args.dataset}); training on the first {split}, "
             f"replaying {len(live_events)}")
        train_file = workdir / "train-events.jsonl"
        with train_file.open("wb") as handle:
            for event in train_events:
                handle.write(orjson.dumps(event) + b"\n")
        _train(train_file, workdir / "model", args.epochs)
        version = _publish_and_promote(settings, workdir / "model")

        log_path = workdir / "worker.log"
        _say(f"starting worker; log: {log_path}")
        worker = start_worker(settings, log_path)
        stack.callback(stop_process, worker, 20.0)
        wait_until_ready(worker, settings, log_path, timeout_s=120.0)
        _say(f"worker ready; metrics at http://127.0.0.1:{settings.web_port}/metrics")

        watcher = OutputWatcher(settings)
        watcher.start()
        stack.callback(watcher.stop)
        _send_bad_examples(settings)
        started = time.monotonic()

        def progress(stats: Any) -> None:
            recs, dead, _ = watcher.snapshot()
            _say(f"in {stats.sent / stats.seconds:7.0f} events/s ({stats.sent} sent) | "
                 f"recommendations out {recs} | dead letters {dead}")

        stats = replay_in_child(live_events, settings, rate_per_s=args.rate,
                                on_progress=progress)
        _wait_drained(watcher, settings)
        elapsed = time.monotonic() - started
        if worker.poll() is not None:
            raise DemoError(f"the worker exited ({worker.returncode}) during the replay; "
                            f"see {log_path} (rerun with --keep-workdir to keep it)")
        _summary(settings, watcher, live_events, stats.sent, elapsed)
        if catalog:
            _showcase(args, settings, watcher, catalog, events)
        if args.ab_shoppers:
            _ab_test(args, settings, watcher, events[split:], catalog, version)
    return 0


def _publish_and_promote(settings: Settings, model_dir: Path) -> str:
    """Put the trained model in the registry and promote it, with the operator's commands."""
    env = {**os.environ, **settings.to_env()}
    published = subprocess.run(streamrec_command("models", "publish", str(model_dir)),
                               capture_output=True, text=True, env=env, check=False)
    if published.returncode != 0:
        raise DemoError(f"streamrec models publish failed: {published.stderr.strip()[-500:]}")
    version = published.stdout.split()[-1]
    promoted = subprocess.run(streamrec_command("models", "promote", version),
                              capture_output=True, text=True, env=env, check=False)
    if promoted.returncode != 0:
        raise DemoError(f"streamrec models promote failed: {promoted.stderr.strip()[-500:]}")
    _say(f"streamrec models publish -> {version}; streamrec models promote {version} "
         f"(registry {settings.model_registry})")
    return version


def _ab_test(args: argparse.Namespace, settings: Settings, watcher: OutputWatcher,
             held_out: list[dict[str, Any]], catalog: list[dict[str, Any]],
             version: str) -> None:
    sessions = held_out_sessions(held_out, min_items=4, limit=args.ab_shoppers)
    prices = {r["item_id"]: float(r["price"]) for r in catalog if "price" in r}
    report = run_ab_test(settings, watcher, sessions, version, prices, _say)
    variants = report["variants"]
    if {"A", "B"} <= set(variants):
        a, b = variants["A"], variants["B"]
        p_ctr = next((c["p_value"] for c in report["comparisons"]
                      if c["variant"] == "B" and c["metric"] == "ctr"), None)
        ahead = (b["ctr"] or 0) > (a["ctr"] or 0)
        verdict = ("the model wins (p < 0.05)" if ahead and p_ctr is not None and p_ctr < 0.05
                   else "the model is ahead, not significantly" if ahead
                   else "the model does NOT win")
        p_text = "n/a" if p_ctr is None else f"{p_ctr:.2g}"
        _say(f"A/B: CTR trending {a['ctr']:.3f} {_interval(a['ctr_ci95'])} vs model "
             f"{b['ctr']:.3f} {_interval(b['ctr_ci95'])}, p = {p_text}; "
             f"revenue/user {a['revenue_per_user'] or 0:.2f} vs "
             f"{b['revenue_per_user'] or 0:.2f}: {verdict}")


def _worker_latency(settings: Settings) -> str:
    from prometheus_client.parser import text_string_to_metric_families

    from devtools.bench.stages import parse_buckets, quantile
    from devtools.processes import http_get

    status, body = http_get(f"http://127.0.0.1:{settings.web_port}/metrics")
    if status != 200:
        return "unavailable"
    text = body.decode()
    freshness: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "streamrec_freshness_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    freshness[float(sample.labels["le"])] = sample.value
    parts = []
    for name, buckets in [("end to end", freshness), *parse_buckets(text).items()]:
        p50, p99 = quantile(buckets, 0.5), quantile(buckets, 0.99)
        if p50 is not None and p99 is not None:
            parts.append(f"{name} {p50 * 1000:.0f} / {p99 * 1000:.0f} ms")
    return "; ".join(parts)


def _interval(bounds: list[float] | None) -> str:
    return "[?]" if not bounds else f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"


def _catalog(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.dataset == "synthetic":
        return generate_catalog(_config(args))
    if args.data_dir is None:
        raise DemoError(f"--dataset {args.dataset} needs --data-dir")
    return load_catalog(args.dataset, args.data_dir)


def _config(args: argparse.Namespace) -> GeneratorConfig:
    return GeneratorConfig(users=args.users, items=args.items, seed=args.seed)


def _showcase(args: argparse.Namespace, settings: Settings, watcher: OutputWatcher,
              catalog: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    by_id = {record["item_id"]: record for record in catalog}
    popular = [item for item, _ in Counter(e["item_id"] for e in events).most_common()
               if item in by_id]
    like = popular[0]
    if args.dataset == "synthetic":
        fresh = new_item(_config(args), int(like.rsplit("-", 1)[1]), "demo-new-item")
        query = "数字pH计"  # "digital pH meter": Chinese, finds English titles too
    else:
        fresh = {**by_id[like], "item_id": "demo-new-item",
                 "title": by_id[like]["title"] + ", 2026 edition"}
        query = " ".join(by_id[popular[1]]["title"].split()[:4])
    Showcase(settings, watcher, by_id, _say).run(fresh, like, query)


def _say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def _events(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.dataset == "synthetic":
        return generate_events(_config(args))
    if args.data_dir is None:
        raise DemoError(f"--dataset {args.dataset} needs --data-dir")
    return load_dataset(args.dataset, args.data_dir)


def _train(train_file: Path, out: Path, epochs: int) -> None:
    command = streamrec_command("train", "--events", str(train_file), "--out", str(out),
                                "--epochs", str(epochs), "--no-progress")
    _say("training: " + " ".join(command[2:]))
    started = time.monotonic()
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise DemoError(f"training failed (exit {result.returncode})")
    metrics = json.loads((out / "metrics.json").read_text())
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()
             if k in ("hr@20", "mrr@20", "cases")}
    _say(f"trained in {time.monotonic() - started:.0f}s; validation {shown}")


def _send_bad_examples(settings: Settings) -> None:
    bad = [
        (settings.topic_views, None, b"{not json"),
        (settings.topic_clicks, b"k", b'{"event_type": "click"}'),
        (settings.topic_views, b"k", b'{"event_id": "x1", "event_type": "teleport", '
         b'"user_id": "u", "item_id": "i", "timestamp": 1767225600000}'),
        (settings.topic_purchases, None, b"\xff\xfe\x00garbage"),
    ]
    _say(f"also sending {send_raw(settings, bad)} malformed messages (they must be "
         f"dead-lettered)")


def _wait_drained(watcher: OutputWatcher, settings: Settings, quiet_s: float = 3.0,
                  timeout_s: float = 120.0) -> None:
    """Wait until no new output arrived for ``quiet_s`` (the worker has caught up)."""
    deadline = time.monotonic() + timeout_s
    last, last_change = watcher.snapshot(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = watcher.snapshot()
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change >= quiet_s:
            return


def _summary(settings: Settings, watcher: OutputWatcher, live: list[dict[str, Any]],
             sent: int, elapsed: float) -> None:
    recs, dead, fallbacks = watcher.snapshot()
    _say("=" * 72)
    _say(f"replayed {sent} events in {elapsed:.1f}s ({sent / elapsed:.0f} events/s end to "
         f"end); {recs} recommendations ({fallbacks} trending fallbacks); "
         f"{dead} dead letters {dict(watcher.dead_letter_reasons)}")
    base = f"http://127.0.0.1:{settings.web_port}"
    status, ready = get_json(f"{base}/readyz")
    _say(f"GET /readyz -> {status} {ready}")
    quantiles = watcher.freshness_quantiles()
    _say("freshness (event time -> recommendation read back by a separate consumer): "
         + ", ".join(f"{q} {v * 1000:.0f} ms" for q, v in quantiles.items()))
    _say("the worker's own view (event time -> recommendation acknowledged, "
         "streamrec_freshness_seconds; p50 / p99 by stage from streamrec_stage_seconds): "
         + _worker_latency(settings))
    active = Counter(event["user_id"] for event in live).most_common(3)
    for user, _count in active:
        status, doc = get_json(f"{base}/users/{user}")
        if status != 200:
            _say(f"user {user}: /users answered {status}")
            continue
        recent = [r["item_id"] for r in doc["recent"][-5:]]
        rec = watcher.latest.get(user) or doc.get("last_recommendation") or {}
        items = [i["item_id"] for i in rec.get("items", [])[:5]]
        _say(f"user {user}: counts {doc['counts']}")
        _say(f"    recent items   {recent}")
        _say(f"    recommended    {items} (model {rec.get('model')}, "
             f"fallback {rec.get('fallback')})")
    _say(f"metrics: {base}/metrics (the worker stops when the demo ends)")
