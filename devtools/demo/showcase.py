"""What the demo shows after the replay, live against the running worker: items understood
from their text, a brand-new item reaching shoppers, an item going out of stock, a search
steering the list (across languages), a merchandising rule taking effect without a restart,
and recommendations that say why each item is there.

Every step publishes through Kafka like a shop would and reads the result back from the
recommendations topic (:class:`~devtools.demo.live.OutputWatcher`) or the worker's HTTP
endpoints; a step that does not see its effect within its deadline says so and the demo
fails.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from devtools.demo.live import OutputWatcher
from devtools.processes import get_json
from devtools.producers import send_raw
from streams.clock import now_ms
from streams.errors import StreamrecError
from streams.settings import Settings


class ShowcaseError(StreamrecError):
    """A live demo step did not see its effect in time: the message names the step; read
    the worker log the demo points to."""


@dataclass
class Showcase:
    settings: Settings
    watcher: OutputWatcher
    catalog: dict[str, dict[str, Any]]
    """item_id -> the item record published."""
    say: Callable[[str], None]
    deadline_s: float = 30.0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def run(self, new_item: dict[str, Any], like: str, query: str) -> None:
        self.neighbours([like, *self._one_chinese_item()])
        self.brand_new_item(new_item, like)
        self.out_of_stock()
        self.search(query)
        self.rule_takes_effect()

    # --- steps ----------------------------------------------------------------------------

    def neighbours(self, items: list[str]) -> None:
        self.say("-" * 72)
        self.say("items understood from their text: nearest items by the multilingual encoder")
        for item in items:
            status, doc = get_json(f"{self.base}/items/{item}")
            if status != 200:
                raise ShowcaseError(f"/items/{item} answered {status}")
            self.say(f"  {doc['title']!r}")
            for other in doc["similar"][:3]:
                self.say(f"      {other['similarity']:.2f}  {other['title']!r}")

    def brand_new_item(self, item: dict[str, Any], like: str) -> None:
        self.say("-" * 72)
        self.say(f"a brand-new item nobody has touched: {item['title']!r}")
        self._publish_items([item])
        self._wait(lambda: (d := self._item(item["item_id"])) and d["has_text"],
                   "the new item in the worker's catalogue")
        shopper = f"demo-shopper-{now_ms()}"
        self._views(shopper, [like])
        rec = self._wait(lambda: self._has(shopper, item["item_id"]),
                         "the new item in the shopper's recommendation")
        rank = [i["item_id"] for i in rec["items"]].index(item["item_id"]) + 1
        self.say(f"  a shopper viewing {self.catalog[like]['title']!r} gets it at rank {rank}"
                 f" of {len(rec['items'])}:")
        self._show(rec, highlight=frozenset({item["item_id"]}), top=max(6, rank))

    def out_of_stock(self) -> None:
        self.say("-" * 72)
        counts = Counter(i["item_id"] for rec in self.watcher.latest_values()
                         for i in rec.get("items", []))
        item, times = counts.most_common(1)[0]
        self.say(f"{self.catalog.get(item, {}).get('title', item)!r} is in {times} current "
                 "recommendations; it goes out of stock")
        self._publish_items([{**self.catalog[item], "available": False}])
        self._wait(lambda: (d := self._item(item)) and not d["recommendable"],
                   "the item out of stock in the worker's catalogue")
        users = [rec["user_id"] for rec in self.watcher.latest_values()
                 if item in {i["item_id"] for i in rec.get("items", [])}][:20]
        since = now_ms()
        for user in users:
            last = self.watcher.latest[user]
            recent = [i["item_id"] for i in last["items"][:1]]
            self._views(user, recent)

        def all_fresh() -> list[dict[str, Any]] | None:
            recs = [self.watcher.latest.get(user) for user in users]
            fresh = [r for r in recs if r is not None and _trigger_ms(r) >= since]
            return fresh if len(fresh) == len(users) else None

        fresh = self._wait(all_fresh, f"new recommendations for the {len(users)} users "
                           "who had it")
        still = sum(item in {i["item_id"] for i in r["items"]} for r in fresh)
        self.say(f"  {len(fresh)} of those users were recommended again: {still} still show "
                 "it")
        if still:
            raise ShowcaseError(f"{still} recommendations still show an out-of-stock item")

    def search(self, query: str) -> None:
        self.say("-" * 72)
        shopper = f"demo-searcher-{now_ms()}"
        self.say(f"a new shopper whose first event is a search: {query!r}")
        send_raw(self.settings, [(self.settings.topic_for("search"), shopper.encode(),
                                  orjson.dumps({"event_id": f"{shopper}-q", "user_id": shopper,
                                                "event_type": "search",
                                                "properties": {"query": query},
                                                "timestamp": now_ms()}))])
        rec = self._wait(lambda: self.watcher.latest.get(shopper), "the searcher's list")
        self._show(rec)

    def rule_takes_effect(self) -> None:
        self.say("-" * 72)
        user = max(self.watcher.latest, key=lambda u: len(self.watcher.latest[u]["items"]))
        last = self.watcher.latest[user]
        target = next(i["item_id"] for i in reversed(last["items"])
                      if self.catalog.get(i["item_id"], {}).get("brand"))
        brand = self.catalog[target]["brand"]
        rule = {"rule_id": "demo-promote-" + brand.lower(), "kind": "boost",
                "brands": [brand], "factor": 4.0, "note": "published by the demo"}
        self.say(f"a merchandiser publishes a rule, live, no restart: {rule}")
        send_raw(self.settings, [(self.settings.topic_rules, rule["rule_id"].encode(),
                                  orjson.dumps(rule))])
        deadline = time.monotonic() + self.deadline_s
        while True:  # until the worker has read the rule, each view brings a fresh list
            since = now_ms()
            self._views(user, [last["items"][0]["item_id"]])
            rec = self._wait(functools.partial(self._newer_than, user, since),
                             "a fresh recommendation")
            if any(i.get("reason", {}).get("rule") == rule["rule_id"] for i in rec["items"]):
                break
            if time.monotonic() > deadline:
                raise ShowcaseError("the rule did not take effect")
        self.say(f"  the next recommendation of {user} follows it ({brand} items first):")
        self._show(rec)

    # --- helpers --------------------------------------------------------------------------

    def _one_chinese_item(self) -> list[str]:
        return [item for item, record in self.catalog.items()
                if any("\u4e00" <= ch <= "\u9fff" for ch in record["title"])][:1]

    def _publish_items(self, records: list[dict[str, Any]]) -> None:
        send_raw(self.settings, [(self.settings.topic_items, r["item_id"].encode(),
                                  orjson.dumps(r)) for r in records])
        for record in records:
            self.catalog[record["item_id"]] = record

    def _views(self, user: str, items: list[str]) -> None:
        start = now_ms()
        send_raw(self.settings, [
            (self.settings.topic_views, user.encode(), orjson.dumps(
                {"event_id": f"{user}-{start}-{n}", "event_type": "view", "user_id": user,
                 "item_id": item, "timestamp": start + n}))
            for n, item in enumerate(items)])

    def _item(self, item: str) -> dict[str, Any] | None:
        status, doc = get_json(f"{self.base}/items/{item}")
        return doc if status == 200 else None

    def _newer_than(self, user: str, since_ms: int) -> dict[str, Any] | None:
        rec = self.watcher.latest.get(user)
        return rec if rec is not None and _trigger_ms(rec) >= since_ms else None

    def _has(self, user: str, item: str) -> dict[str, Any] | None:
        rec = self.watcher.latest.get(user)
        return rec if rec and item in {i["item_id"] for i in rec["items"]} else None

    def _wait(self, probe: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + self.deadline_s
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            time.sleep(0.1)
        raise ShowcaseError(f"timed out after {self.deadline_s:.0f} s waiting for {what}")

    def _show(self, rec: dict[str, Any], highlight: frozenset[str] = frozenset(), top: int = 6
              ) -> None:
        fallback = f", fallback {rec['fallback']}" if rec.get("fallback") else ""
        self.say(f"    model {rec['model']['name']}{fallback}:")
        for item in rec["items"][:top]:
            title = self.catalog.get(item["item_id"], {}).get("title", item["item_id"])
            mark = "  <-- new" if item["item_id"] in highlight else ""
            self.say(f"      {title[:48]!r:52} {_reason(item.get('reason'))}{mark}")


def _reason(reason: dict[str, Any] | None) -> str:
    if not reason:
        return ""
    extra = {k: v for k, v in reason.items() if k != "kind"}
    return reason["kind"] + (f" {extra}" if extra else "")


def _trigger_ms(rec: dict[str, Any]) -> int:
    from schemas.timestamps import parse_rfc3339_ms

    return parse_rfc3339_ms(rec["trigger"]["event_time"])
