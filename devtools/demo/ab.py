"""The demo's A/B test: the trained model against the trending baseline, judged by simulated
shoppers' clicks and purchases through the real attribution path.

Each shopper is a new user who walks a real held-out session (one the model never trained
on): at every step they view the session's next item, read the recommendation the worker
made for that view, and click at most one recommended item — with probability
``p_relevant`` when the item is one they really go on to view within the next
``horizon`` steps, ``p_other`` otherwise — echoing the list's ``recommendation_id`` as a UI
does. A clicked item they really wanted is bought with probability ``p_buy`` (at the
catalogue's price). So a variant earns clicks and purchases in proportion to how well it
predicts what each shopper wants next; nothing in the simulation knows which variant served.

The experiment is started and stopped with ``streamrec experiment``, and judged by
``streamrec experiment report`` from the feedback topic, as an operator would.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from devtools.demo.live import OutputWatcher
from devtools.processes import get_json, streamrec_command
from devtools.producers import send_raw
from streams.errors import StreamrecError
from streams.settings import Settings

EXPERIMENT = "demo-model-vs-trending"


class ABTestError(StreamrecError):
    """The demo's A/B step failed: the message says which command or wait."""


@dataclass(frozen=True)
class ShopperModel:
    """How the simulated shoppers behave (see the module doc)."""

    p_relevant: float = 0.5
    p_other: float = 0.02
    p_buy: float = 0.3
    horizon: int = 5
    steps: int = 6


def held_out_sessions(events: Sequence[dict[str, Any]], min_items: int, limit: int
                      ) -> list[list[str]]:
    """Item sequences of the held-out sessions with at least ``min_items`` distinct views."""
    sessions: dict[tuple[str, str], list[str]] = {}
    for event in events:
        if event["event_type"] == "view":
            key = (event["user_id"], event.get("session_id") or "")
            items = sessions.setdefault(key, [])
            if event["item_id"] not in items:
                items.append(event["item_id"])
    return [items for items in sessions.values() if len(items) >= min_items][:limit]


def run_ab_test(settings: Settings, watcher: OutputWatcher, sessions: list[list[str]],
                version: str, prices: dict[str, float], say: Callable[[str], None],
                behaviour: ShopperModel = ShopperModel(), seed: int = 5) -> dict[str, Any]:
    """Start the experiment (A = trending, B = ``version``), let the shoppers shop, stop it,
    and return the report's JSON (its table is printed)."""
    _cli(settings, "experiment", "start", EXPERIMENT, "--variant", "A=trending:0.5",
         "--variant", f"B={version}:0.5")
    _wait_served(settings)
    say(f"A/B test {EXPERIMENT}: A = trending baseline, B = the trained model {version}; "
        f"{len(sessions)} simulated shoppers walk held-out sessions for up to "
        f"{behaviour.steps} steps, clicking what they really want next")
    rng = random.Random(seed)
    shoppers = {f"shopper-{n:04d}": items for n, items in enumerate(sessions)}
    stamp = time.strftime("%H%M%S")
    for step in range(behaviour.steps):
        active = {user: items for user, items in shoppers.items() if step < len(items) - 1}
        if not active:
            break
        views = {user: _event(f"ab-{stamp}-{user}-{step}-v", "view", user, items[step])
                 for user, items in active.items()}
        send_raw(settings, [(settings.topic_views, user.encode(), orjson.dumps(event))
                            for user, event in views.items()])
        lists = _await_lists(watcher, {u: e["event_id"] for u, e in views.items()})
        follow_ups = []
        for user, items in active.items():
            rec = lists.get(user)
            if rec is None:
                continue
            wanted = set(items[step + 1:step + 1 + behaviour.horizon])
            for item in (i["item_id"] for i in rec["items"]):
                relevant = item in wanted
                if rng.random() < (behaviour.p_relevant if relevant else behaviour.p_other):
                    echo = {"recommendation_id": rec["recommendation_id"]}
                    follow_ups.append(_event(f"ab-{stamp}-{user}-{step}-c", "click", user,
                                             item, echo))
                    if relevant and rng.random() < behaviour.p_buy:
                        follow_ups.append(_event(
                            f"ab-{stamp}-{user}-{step}-p", "purchase", user, item,
                            {**echo, "price": prices.get(item, 10.0), "quantity": 1}))
                    break
        send_raw(settings, [(settings.topic_for(e["event_type"]), e["user_id"].encode(),
                             orjson.dumps(e)) for e in follow_ups])
    _await_lists(watcher, {}, settle_s=2.0)
    _cli(settings, "experiment", "stop", EXPERIMENT)
    report = _report(settings)
    return report


def _event(event_id: str, event_type: str, user: str, item: str,
           properties: dict[str, Any] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": event_id, "event_type": event_type, "user_id": user,
                             "item_id": item, "timestamp": time.time_ns() // 1_000_000}
    if properties:
        event["properties"] = properties
    return event


def _await_lists(watcher: OutputWatcher, triggers: dict[str, str], timeout_s: float = 60.0,
                 settle_s: float = 0.0) -> dict[str, dict[str, Any]]:
    """Each user's recommendation for the given trigger event, as read back."""
    deadline = time.monotonic() + timeout_s
    while True:
        with watcher._lock:  # noqa: SLF001 - a consistent view of the watcher's state
            latest = {u: watcher.latest.get(u) for u in triggers}
        found = {u: r for u, r in latest.items()
                 if r is not None and r["trigger"]["event_id"] == triggers[u]}
        if len(found) == len(triggers) or time.monotonic() > deadline:
            if settle_s:
                time.sleep(settle_s)  # the last clicks' attributions reach the log
            return found
        time.sleep(0.05)


def _wait_served(settings: Settings, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _status, body = get_json(f"http://127.0.0.1:{settings.web_port}/readyz")
        experiment = ((body or {}).get("models") or {}).get("experiment")
        if experiment and experiment.get("name") == EXPERIMENT:
            return
        time.sleep(0.2)
    raise ABTestError(f"the worker did not start serving experiment {EXPERIMENT} within "
                      f"{timeout_s:.0f} s; see its /readyz 'models' section")


def _report(settings: Settings) -> dict[str, Any]:
    table = _cli(settings, "experiment", "report", EXPERIMENT)
    print(table, flush=True)
    return dict(json.loads(_cli(settings, "experiment", "report", EXPERIMENT, "--json")))


def _cli(settings: Settings, *args: str) -> str:
    result = subprocess.run(streamrec_command(*args), capture_output=True, text=True,
                            env=_env(settings), check=False)
    if result.returncode != 0:
        raise ABTestError(f"streamrec {' '.join(args)} failed ({result.returncode}): "
                          f"{result.stderr.strip()[-800:]}")
    return result.stdout


def _env(settings: Settings) -> dict[str, str]:
    import os

    return {**os.environ, **settings.to_env()}
