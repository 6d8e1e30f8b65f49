"""Online attribution end to end, across a SIGKILL: an experiment splits users between two
registry versions; every user clicks, carts and buys items their recommendation showed (the
UI echoing ``recommendation_id``), clicks one item twice and one item never shown; the
worker is killed mid-stream and restarted. ``streamrec experiment report`` (read from the
feedback topic) must then count exactly the interactions that deserve credit — none lost,
none twice."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson

from devtools.broker import EmbeddedBroker
from models.registry import ModelRegistry
from schemas.control import Experiment, ExperimentStatus, Promotion, Variant
from streams.control.topic import publish_control
from streams.experiments.report import read_report
from streams.kafka.topics import create_topics
from tests.integration.test_model_lifecycle import second_version
from tests.support import (
    FAST_GROUP,
    TopicReader,
    WorkerProcess,
    isolated_settings,
    produce,
    wait_for,
)

USERS = 80
PRICE, QUANTITY = 19.5, 2


def interactions(user: str, shown: list[str], rid: str, now: int) -> list[dict[str, Any]]:
    """What one user does with their recommendation: 3 clicks (one item clicked twice), a
    cart and a purchase of shown items, and a click on an item never shown."""
    echo = {"recommendation_id": rid}

    def event(n: int, event_type: str, item: str, **properties: Any) -> dict[str, Any]:
        return {"event_id": f"at-{user}-{n}", "event_type": event_type, "user_id": user,
                "item_id": item, "timestamp": now + n, "properties": {**echo, **properties}}

    return [event(1, "click", shown[0]), event(2, "click", shown[1]),
            event(3, "click", shown[0]),  # the same item again: no second credit
            event(4, "click", shown[2]), event(5, "add_to_cart", shown[1]),
            event(6, "purchase", shown[1], price=PRICE, quantity=QUANTITY),
            event(7, "click", "item-never-shown")]


def test_attribution_counts_are_exact_across_a_sigkill(
    broker: EmbeddedBroker, tmp_path: Path, tiny_model_dir: Path
) -> None:
    settings = isolated_settings(broker.url, tmp_path, model_registry=tmp_path / "registry",
                                 topic_partitions=2, **FAST_GROUP)
    create_topics(settings)
    registry = ModelRegistry(tmp_path / "registry")
    v1 = registry.publish(tiny_model_dir).version
    v2 = registry.publish(second_version(tiny_model_dir, tmp_path / "m2", "two")).version
    now = int(time.time() * 1000)
    publish_control(settings, Promotion(v1, (), now, "promote"))
    publish_control(settings, Experiment("att", "feed" * 8, (Variant("A", v1, 0.5),
                                         Variant("B", v2, 0.5)), None,
                                         ExperimentStatus.RUNNING, now, now))
    users = [f"at-user-{u}" for u in range(USERS)]
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    reader = TopicReader(settings, [settings.topic_recommendations])
    try:
        worker.wait_ready()
        wait_for(lambda: (worker.get("/readyz")[1] or {}).get("models", {}).get("experiment"),
                 60, "the experiment to be served")
        produce(settings, [(settings.topic_views, u.encode(), orjson.dumps({
            "event_id": f"at-{u}-0", "event_type": "view", "user_id": u,
            "item_id": f"item-{(i * 7) % 150:05d}", "timestamp": now})) for i, u in
            enumerate(users)])

        def first_lists() -> dict[str, dict[str, Any]]:
            reader.poll()
            latest = {m["user_id"]: m for m in reader.values(settings.topic_recommendations)}
            return latest if all(len(latest.get(u, {}).get("items", [])) >= 3
                                 for u in users) else {}

        shown = wait_for(first_lists, 60, "a recommendation for every user")
        later = int(time.time() * 1000) + 1000
        planned = [e for u in users for e in interactions(
            u, [i["item_id"] for i in shown[u]["items"]], shown[u]["recommendation_id"], later)]
        progress = {"sent": 0}

        def send() -> None:
            for start in range(0, len(planned), 40):
                chunk = planned[start:start + 40]
                produce(settings, [(settings.topic_for(e["event_type"]), e["user_id"].encode(),
                                    orjson.dumps(e)) for e in chunk])
                progress["sent"] = start + len(chunk)
                time.sleep(0.05)  # a steady producer, not a test wait

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        wait_for(lambda: progress["sent"] >= len(planned) // 2, 60, "half the interactions")
        worker.kill()
        worker.start()
        worker.wait_ready()
        thread.join(timeout=60)
        assert not thread.is_alive()

        def applied() -> bool:
            docs = [worker.get(f"/users/{u}") for u in users]
            return all(status == 200 and doc["events_applied"] == 8 for status, doc in docs)

        wait_for(applied, 90, "every interaction applied", interval_s=0.5)

        by_variant = {"A": [], "B": []}  # type: dict[str, list[str]]
        for user in users:
            by_variant[shown[user]["experiment"]["variant"]].append(user)

        def complete() -> Any:
            report = read_report(settings, "att")
            counts = {name: (v.clicks, v.carts, v.purchases) for name, v in
                      report.variants.items()}
            expected = {name: (3 * len(us), len(us), len(us)) for name, us in
                        by_variant.items()}
            return report if counts == expected else None

        report = wait_for(complete, 60, "the feedback log to hold every attribution",
                          interval_s=1.0)
        for name, members in by_variant.items():
            variant = report.variants[name]
            assert variant.users == len(members)
            assert variant.revenue == len(members) * PRICE * QUANTITY
            assert variant.converted_users == len(members)
            assert variant.clicked_recommendations == len(members)  # the first list earned them
        assert {c.metric for c in report.comparisons} == {"ctr", "conversion"}
        # a second look changes nothing: the log is read whole, duplicates collapse
        again = read_report(settings, "att")
        assert again.to_json_dict() == report.to_json_dict()
    finally:
        reader.consumer.close()
        worker.stop()
        print(worker.log_tail(30))
