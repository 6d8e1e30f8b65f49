"""The catalogue end to end: two real workers, the real text encoder, the embedded broker.

One scenario, in order (each step needs the ones before):
1. a catalogue (English and Chinese titles) published to ``items`` reaches both workers;
   bad item records go to the dead-letter topic with their reason;
2. shoppers browse; an item goes out of stock and every recommendation triggered after both
   workers applied the change leaves it out; one update's propagation delay is measured;
3. a brand-new item nobody has touched reaches the users who look at similar items;
4. a restarted worker has the whole catalogue back from its local store without embedding
   anything again, and an item removed (tombstone) is never recommended.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from devtools.broker import EmbeddedBroker
from devtools.demo.catalog import generate_catalog, new_item
from devtools.demo.generator import GeneratorConfig, generate_events
from schemas.dead_letters import decode_dead_letter
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
PH_METER = 0  # generator category 0: "digital pH meter" items 0, 20, 40, ...


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path, tiny_model_dir: Path) -> Settings:
    settings = isolated_settings(broker.url, tmp_path, model_dir=tiny_model_dir,
                                 standby_replicas=0, **FAST_GROUP)
    create_topics(settings)
    return settings


def publish_items(settings: Settings, records: list[dict[str, Any] | tuple[str, None]]) -> None:
    produce(settings, [
        (settings.topic_items, r[0].encode(), None) if isinstance(r, tuple)
        else (settings.topic_items, r["item_id"].encode(), orjson.dumps(r))
        for r in records])


def item_on(worker: WorkerProcess, item: str) -> dict[str, Any] | None:
    status, doc = worker.get(f"/items/{item}")
    return doc if status == 200 else None


def views(settings: Settings, user: str, items: list[str], start_ms: int, tag: str
          ) -> list[tuple[str, bytes, bytes]]:
    return [(settings.topic_views, user.encode(), orjson.dumps(
        {"event_id": f"{tag}-{user}-{n}", "event_type": "view", "user_id": user,
         "item_id": item, "timestamp": start_ms + n})) for n, item in enumerate(items)]


def test_the_catalogue_end_to_end(settings: Settings, workers: list[WorkerProcess]) -> None:
    catalog = generate_catalog(CONFIG)
    publish_items(settings, catalog)
    produce(settings, [
        (settings.topic_items, b"mismatch", orjson.dumps({"item_id": "other", "title": "x"})),
        (settings.topic_items, b"broken", b"{not json"),
        (settings.topic_items, b"untitled", orjson.dumps({"item_id": "untitled"})),
    ])
    for worker in workers:
        worker.wait_ready()
    for worker in workers:  # 1. every worker holds the whole catalogue, embedded
        wait_for(lambda w=worker: (d := item_on(w, catalog[-1]["item_id"])) and d["has_text"],
                 60, "the catalogue on both workers")
        assert value(worker.base_url, "streamrec_catalog_items") == len(catalog)
        assert value(worker.base_url, "streamrec_catalog_indexed_items") == len(
            catalog)
    reader = TopicReader(settings, [settings.topic_dead_letter, settings.topic_recommendations])
    try:
        def dead_letters() -> list[dict[str, Any]] | None:
            reader.poll()
            found = [decode_dead_letter(m.value()) for m in reader.messages
                     if m.topic() == settings.topic_dead_letter]
            return found if len(found) >= 3 else None

        dead = wait_for(dead_letters, 30, "three dead-lettered item records")
        assert sorted(d["reason"] for d in dead) == ["invalid_json", "key_mismatch",
                                                     "missing_field"]
        # Text neighbours cross languages: the nearest items of a Chinese-titled pH meter
        # are pH meters, English-titled ones among them.
        doc = item_on(workers[0], "item-00020")
        assert doc is not None and "pH计" in doc["title"]
        similar = [s["item_id"] for s in doc["similar"]]
        ph_meters = {f"item-{i:05d}" for i in range(PH_METER, CONFIG.items, CONFIG.categories)}
        assert len(set(similar[:3]) & ph_meters) == 3, doc["similar"]
        assert any(s["item_id"] in ph_meters and "pH meter" in s["title"]
                   for s in doc["similar"][:3]), doc["similar"]

        # 2. an item goes out of stock while users are active
        events = first_events(generate_events(CONFIG), per_user=3)
        now = int(time.time() * 1000)
        produce(settings, [(settings.topic_for(e["event_type"]), e["user_id"].encode(),
                            orjson.dumps({**e, "timestamp": now - 60_000 + n}))
                           for n, e in enumerate(events)])
        popular = _most_recommended(reader, settings)
        gone = next(r for r in catalog if r["item_id"] == popular)
        published = time.monotonic()
        publish_items(settings, [{**gone, "available": False}])
        delays = []
        for worker in workers:
            wait_for(lambda w=worker: (d := item_on(w, popular)) and not d["recommendable"],
                     30, f"{popular} out of stock on {worker.base_url}")
            delays.append(time.monotonic() - published)
        print(f"\ncatalogue propagation to 2 workers: {max(delays) * 1000:.0f} ms (poll 0.1 s)")
        after = int(time.time() * 1000) + 1
        produce(settings, [(settings.topic_for(e["event_type"]), e["user_id"].encode(),
                            orjson.dumps({**e, "event_id": e["event_id"] + "-after",
                                          "timestamp": after + n}))
                           for n, e in enumerate(events[:200])])
        wait_for(lambda: len({r["user_id"] for r in _recommendations(reader, settings)
                              if _trigger_ms(r) >= after}) >= 20, 60, "20 users after it")
        later = [r for r in _recommendations(reader, settings) if _trigger_ms(r) >= after]
        assert all(popular not in {i["item_id"] for i in r["items"]} for r in later)

        # 3. a brand-new item reaches the users who look at similar items
        fresh = new_item(CONFIG, PH_METER, "brand-new-ph-meter")
        publish_items(settings, [fresh])
        for worker in workers:
            wait_for(lambda w=worker: (d := item_on(w, fresh["item_id"])) and d["has_text"],
                     30, "the new item on every worker")
        shopper_start = int(time.time() * 1000)
        shoppers = [f"ph-fan-{n}" for n in range(6)]
        ph_items = sorted(ph_meters)[:4]
        produce(settings, [m for n, user in enumerate(shoppers)
                           for m in views(settings, user, [ph_items[1 + n % 3], ph_items[0]],
                                          shopper_start, "ph")])
        def shoppers_with_it() -> set[str]:
            return {r["user_id"] for r in _recommendations(reader, settings)
                    if r["user_id"] in shoppers
                    and fresh["item_id"] in {i["item_id"] for i in r["items"]}}

        try:
            wait_for(lambda: shoppers_with_it() == set(shoppers), 60, "the new item for all")
        except AssertionError:
            latest = {r["user_id"]: [i["item_id"] for i in r["items"]]
                      for r in _recommendations(reader, settings) if r["user_id"] in shoppers}
            raise AssertionError(f"{fresh['title']} missing: {latest}") from None

        # 4. remove the new item; restart a worker: catalogue back without re-embedding
        publish_items(settings, [(fresh["item_id"], None)])
        for worker in workers:
            wait_for(lambda w=worker: item_on(w, fresh["item_id"]) is None, 30,
                     "the removed item gone")
        workers[0].stop()
        workers[0].start()
        workers[0].wait_ready()
        wait_for(lambda: value(workers[0].base_url, "streamrec_catalog_items")
                 == len(catalog), 30, "the catalogue back after restart")
        assert value(workers[0].base_url, "streamrec_catalog_items_embedded_total") == 0.0
        assert value(workers[0].base_url, "streamrec_catalog_indexed_items") == (
            len(catalog) - 1)  # the out-of-stock item stays out of the index
        removed_at = int(time.time() * 1000)
        produce(settings, [m for user in shoppers[:2]
                           for m in views(settings, user, ph_items[2:4], removed_at, "again")])
        wait_for(lambda: len({r["user_id"] for r in _recommendations(reader, settings)
                              if _trigger_ms(r) >= removed_at}) >= 2, 60, "fresh recs")
        for rec in _recommendations(reader, settings):
            if _trigger_ms(rec) >= removed_at:
                assert fresh["item_id"] not in {i["item_id"] for i in rec["items"]}
    finally:
        reader.close()


def first_events(events: list[dict[str, Any]], per_user: int) -> list[dict[str, Any]]:
    """Each user's first few events: many shoppers active at once."""
    seen: dict[str, int] = {}
    out = []
    for event in events:
        if seen.get(event["user_id"], 0) < per_user:
            seen[event["user_id"]] = seen.get(event["user_id"], 0) + 1
            out.append(event)
    return out


def value(base_url: str, name: str) -> float | None:
    """A metric without labels on the worker's /metrics (None: absent)."""
    return metric_values(base_url, name, label="no-such-label").get("")


def _recommendations(reader: TopicReader, settings: Settings) -> list[dict[str, Any]]:
    reader.poll()
    return reader.values(settings.topic_recommendations)


def _trigger_ms(recommendation: dict[str, Any]) -> int:
    from schemas.timestamps import parse_rfc3339_ms

    return parse_rfc3339_ms(recommendation["trigger"]["event_time"])


def _most_recommended(reader: TopicReader, settings: Settings) -> str:
    """The item appearing in the most recommendations so far (once 50 users have one)."""
    wait_for(lambda: len({r["user_id"] for r in _recommendations(reader, settings)}) >= 50,
             60, "recommendations for 50 users")
    counts: dict[str, int] = {}
    for rec in _recommendations(reader, settings):
        for item in rec["items"]:
            counts[item["item_id"]] = counts.get(item["item_id"], 0) + 1
    return max(counts, key=lambda item: (counts[item], item))
