"""The ranking layer end to end: a real worker (tiny model, the real text encoder, the
synthetic catalogue), rules published live on the rules topic, searches on the searches
topic, every recommendation read back from Kafka.

One scenario, in order: every reason kind appears where it should (sequence, similar,
new_item, search, trending, boosted); then each rule type is published while the worker runs
and every recommendation triggered after the worker applied it obeys it, and the rule is
counted in ``streamrec_rule_applied_total{rule}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from devtools.broker import EmbeddedBroker
from devtools.demo.catalog import generate_catalog, new_item
from devtools.demo.generator import GeneratorConfig
from schemas.rules import (
    Boost,
    CategoryCap,
    ExcludeCategories,
    ExcludeItems,
    ExcludePurchased,
    PriceRange,
    Rule,
    encode_rule,
)
from schemas.timestamps import parse_rfc3339_ms
from streams.kafka.topics import create_topics
from streams.settings import Settings
from tests.support import (
    FAST_GROUP,
    TopicReader,
    WorkerProcess,
    isolated_settings,
    metric_values,
    produce,
    wait_for,
)

CONFIG = GeneratorConfig(users=300, items=200, seed=3)  # the tiny model's training stream
CATALOG = generate_catalog(CONFIG)
BY_ID = {r["item_id"]: r for r in CATALOG}
PH_METERS = [f"item-{i:05d}" for i in range(0, CONFIG.items, CONFIG.categories)]


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path, tiny_model_dir: Path) -> Settings:
    settings = isolated_settings(broker.url, tmp_path, model_dir=tiny_model_dir,
                                 standby_replicas=0, **FAST_GROUP)
    create_topics(settings)
    produce(settings, [(settings.topic_items, r["item_id"].encode(), orjson.dumps(r))
                       for r in CATALOG])
    return settings


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    started = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        started.wait_ready()
        wait_for(lambda: (d := started.get(f"/items/{CATALOG[-1]['item_id']}")[1])
                 and d.get("has_text"), 60, "the catalogue embedded")
        yield started
    finally:
        started.stop()


class Shop:
    """Publishes like a shop and reads recommendations back like a downstream service."""

    def __init__(self, settings: Settings, worker: WorkerProcess) -> None:
        self.settings, self.worker = settings, worker
        self.reader = TopicReader(settings, [settings.topic_recommendations])
        self.serial = 0

    def send(self, user: str, *, views: list[str] = (), search: str | None = None,
             purchase: str | None = None) -> int:
        """Events for ``user`` stamped now; returns the newest event time (ms)."""
        self.serial += 1
        start = int(time.time() * 1000)
        events: list[dict[str, Any]] = [
            {"event_id": f"{user}-{self.serial}-v{n}", "event_type": "view", "user_id": user,
             "item_id": item, "timestamp": start + n} for n, item in enumerate(views)]
        if purchase is not None:
            events.append({"event_id": f"{user}-{self.serial}-p", "event_type": "purchase",
                           "user_id": user, "item_id": purchase,
                           "timestamp": start + len(events)})
        if search is not None:
            events.append({"event_id": f"{user}-{self.serial}-q", "event_type": "search",
                           "user_id": user, "properties": {"query": search},
                           "timestamp": start + len(events)})
        produce(self.settings, [(self.settings.topic_for(e["event_type"]), user.encode(),
                                 orjson.dumps(e)) for e in events])
        return start + len(events) - 1

    def latest(self, user: str, since_ms: int) -> dict[str, Any]:
        """The user's first recommendation reflecting events at or after ``since_ms``."""
        def found() -> dict[str, Any] | None:
            self.reader.poll()
            for rec in reversed(self.reader.values(self.settings.topic_recommendations)):
                if (rec["user_id"] == user
                        and parse_rfc3339_ms(rec["trigger"]["event_time"]) >= since_ms):
                    return rec
            return None

        return wait_for(found, 30, f"a recommendation for {user}")

    def publish_rule(self, rule: Rule | tuple[str, None]) -> None:
        key, value = ((rule[0], None) if isinstance(rule, tuple)
                      else (rule.rule_id, encode_rule(rule)))
        produce(self.settings, [(self.settings.topic_rules, key.encode(), value)])

    def until_applied(self, user: str, views: list[str],
                      obeys: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """Send ``views`` again and again until the newest recommendation ``obeys`` (the
        worker reads the rules topic on its own task: a rule applies from the next
        micro-batch after it was read); then check the following one obeys as well."""
        deadline = time.monotonic() + 30
        while True:
            rec = self.latest(user, self.send(user, views=views))
            if obeys(rec):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: never applied; last {items(rec)}")
        rec = self.latest(user, self.send(user, views=views))
        assert obeys(rec), f"{what}: applied once, then not: {items(rec)}"
        return rec

    def rule_count(self, rule_id: str) -> float:
        return metric_values(self.worker.base_url, "streamrec_rule_applied_total",
                             "rule").get(rule_id, 0.0)


def items(rec: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in rec["items"]]


def kinds(rec: dict[str, Any]) -> set[str]:
    return {i["reason"]["kind"] for i in rec["items"]}


def test_reasons_and_live_rules(settings: Settings, worker: WorkerProcess) -> None:
    shop = Shop(settings, worker)
    try:
        # --- every reason kind --------------------------------------------------------
        browsing = PH_METERS[:3]
        rec = shop.latest("fan", shop.send("fan", views=browsing))
        assert rec["fallback"] is None and {"sequence", "similar"} <= kinds(rec), rec
        for item in rec["items"]:
            if item["reason"]["kind"] == "similar":
                assert item["reason"]["item_id"] in browsing

        fresh = new_item(CONFIG, 0, "brand-new")
        produce(settings, [(settings.topic_items, b"brand-new", orjson.dumps(fresh))])
        wait_for(lambda: (d := worker.get("/items/brand-new")[1]) and d.get("has_text"), 30,
                 "the new item")
        rec = shop.latest("first-look", shop.send("first-look", views=[PH_METERS[0]]))
        assert {"item_id": "brand-new", "kind": "new_item"} in [
            {"item_id": i["item_id"], "kind": i["reason"]["kind"]} for i in rec["items"]]

        rec = shop.latest("searcher", shop.send("searcher", search="数字pH计"))
        assert rec["fallback"] == "no_history"
        assert rec["items"][0]["reason"] == {"kind": "search", "query": "数字pH计"}
        assert items(rec)[0] in {*PH_METERS, "brand-new"}

        rec = shop.latest("stranger", shop.send("stranger", views=["not-in-the-catalogue"]))
        assert rec["fallback"] == "unknown_items" and kinds(rec) == {"trending"}

        # --- each rule type, published live ---------------------------------------------
        shown = items(shop.latest("fan", shop.send("fan", views=browsing)))
        target = shown[0]
        shop.publish_rule(ExcludeItems(rule_id="recall", items=(target,)))
        shop.until_applied("fan", browsing, lambda r: target not in items(r), "exclude_items")
        assert shop.rule_count("recall") > 0

        other = shop.latest("other", shop.send("other", views=browsing))
        personal = items(other)[0]
        shop.publish_rule(ExcludeItems(rule_id="not-for-fan", items=(personal,),
                                       user_id="fan"))
        shop.until_applied("fan", browsing, lambda r: personal not in items(r),
                           "per-user exclude_items")
        assert personal in items(shop.latest("other", shop.send("other", views=browsing)))

        shop.publish_rule(ExcludeCategories(rule_id="no-lab", categories=("Lab",)))
        shop.until_applied("fan", browsing, lambda r: all(
            BY_ID.get(i, {}).get("category", ["?"])[0] != "Lab" for i in items(r)),
            "exclude_categories")
        shop.publish_rule(("no-lab", None))  # a tombstone lifts it
        shop.until_applied("fan", browsing, lambda r: any(
            BY_ID.get(i, {}).get("category", ["?"])[0] == "Lab" for i in items(r)),
            "exclude_categories removed")

        shop.publish_rule(PriceRange(rule_id="under-100", max_price=100.0))
        shop.until_applied("fan", browsing, lambda r: all(
            BY_ID.get(i, {}).get("price", 0.0) <= 100.0 for i in items(r)), "price_range")
        shop.publish_rule(("under-100", None))

        shop.publish_rule(CategoryCap(rule_id="two-each", max_items=2))
        shop.until_applied("fan", browsing, lambda r: max(
            sum(BY_ID.get(i, {}).get("category", [i])[0] == root for i in items(r))
            for root in {BY_ID.get(i, {}).get("category", [i])[0] for i in items(r)}) <= 2,
            "category_cap")
        assert shop.rule_count("two-each") > 0
        shop.publish_rule(("two-each", None))

        brand = BY_ID[shown[-1]]["brand"]
        shop.publish_rule(Boost(rule_id="promo", brands=(brand,), factor=8.0))
        rec = shop.until_applied("fan", browsing, lambda r: r["items"][0]["reason"].get(
            "rule") == "promo", "boost")
        assert BY_ID[items(rec)[0]]["brand"] == brand
        assert rec["items"][0]["reason"] == {"kind": "boosted", "rule": "promo"}
        shop.publish_rule(("promo", None))

        bought = items(shop.latest("buyer", shop.send("buyer", views=browsing)))[0]
        # wait for the purchase to be applied: it travels on another topic than the views,
        # so the next views alone may be processed before it
        after_purchase = shop.latest("buyer", shop.send("buyer", views=browsing,
                                                        purchase=bought))
        assert bought not in items(after_purchase)
        assert bought not in items(shop.latest("buyer", shop.send("buyer", views=browsing)))
        # exclude_purchased with a window shorter than the purchase's age lets it back
        shop.publish_rule(ExcludePurchased(rule_id="fresh-buys", days=1e-9))
        shop.until_applied("buyer", [*browsing, bought], lambda r: bought in items(r),
                           "exclude_purchased")
    finally:
        shop.reader.close()
