"""The guard rail end to end: an experiment whose variant B serves a model that knows none of
the shop's items (its vocabulary is another catalogue's) is rolled back by the worker on its
own — announced on the control topic with the figures, counted, and no longer served."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import orjson

from devtools.broker import EmbeddedBroker
from models.registry import ModelRegistry
from schemas.control import Experiment, ExperimentStatus, Promotion, Variant
from streams.control.topic import publish_control, read_control_snapshot
from streams.kafka.topics import create_topics
from tests.support import (
    FAST_GROUP,
    TopicReader,
    WorkerProcess,
    isolated_settings,
    metric_values,
    produce,
    wait_for,
)

USERS = 120


def foreign_version(model_dir: Path, target: Path) -> Path:
    """The same network over another catalogue's item ids: servable, but it knows none of
    this shop's items, so every user it gets falls back as ``unknown_items``."""
    shutil.copytree(model_dir, target)
    vocab = json.loads((target / "vocab.json").read_text())
    vocab["items"] = [f"elsewhere-{item}" for item in vocab["items"]]
    (target / "vocab.json").write_text(json.dumps(vocab))
    return target


def test_a_variant_whose_model_fails_is_rolled_back_by_the_worker(
    broker: EmbeddedBroker, tmp_path: Path, tiny_model_dir: Path
) -> None:
    settings = isolated_settings(broker.url, tmp_path, model_registry=tmp_path / "registry",
                                 guard_min_users=20, guard_max_p_value=0.001,
                                 **FAST_GROUP)
    create_topics(settings)
    registry = ModelRegistry(tmp_path / "registry")
    good = registry.publish(tiny_model_dir).version
    broken = registry.publish(foreign_version(tiny_model_dir, tmp_path / "foreign")).version
    now = int(time.time() * 1000)
    publish_control(settings, Promotion(good, (), now, "promote"))
    publish_control(settings, Experiment("guarded", "0bad" * 8,
                                         (Variant("A", good, 0.5), Variant("B", broken, 0.5)),
                                         None, ExperimentStatus.RUNNING, now, now))
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    reader = TopicReader(settings, [settings.topic_recommendations])
    try:
        worker.wait_ready()
        wait_for(lambda: (worker.get("/readyz")[1] or {}).get("models", {}).get("experiment"),
                 60, "the experiment to be served")
        produce(settings, [(settings.topic_views, f"g-user-{u}".encode(), orjson.dumps({
            "event_id": f"g-{u}", "event_type": "view", "user_id": f"g-user-{u}",
            "item_id": f"item-{(u * 7) % 150:05d}", "timestamp": now})) for u in range(USERS)])

        def rolled_back() -> Experiment | None:
            experiment = read_control_snapshot(settings).experiments.get("guarded")
            return experiment if experiment and not experiment.is_running else None

        experiment = wait_for(rolled_back, 60, "the rollback on the control topic")
        assert experiment.status == ExperimentStatus.ROLLED_BACK
        assert experiment.reason is not None and "variant B failed" in experiment.reason
        rollbacks = metric_values(worker.base_url, "streamrec_guard_rollbacks_total",
                                  "variant")
        assert rollbacks.get("B") == 1.0
        wait_for(lambda: (worker.get("/readyz")[1] or {}).get("models", {}).get(
            "experiment", "still") is None, 30, "the experiment no longer served")

        produce(settings, [(settings.topic_views, b"g-user-0", orjson.dumps({
            "event_id": "g-after", "event_type": "view", "user_id": "g-user-0",
            "item_id": "item-00003", "timestamp": int(time.time() * 1000)}))])

        def after() -> dict[str, Any] | None:
            reader.poll()
            return next((m for m in reader.values(settings.topic_recommendations)
                         if m["trigger"]["event_id"] == "g-after"), None)

        message = wait_for(after, 30, "a recommendation after the rollback")
        assert message["experiment"] is None and message["model"]["version"] == good
        assert message["fallback"] is None
    finally:
        reader.consumer.close()
        worker.stop()
        print(worker.log_tail(20))
