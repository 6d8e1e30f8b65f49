"""The state agent under an experiment, in process (real Faust app and RocksDB, recording
producer): each user scored by their variant only, one call per variant per micro-batch;
messages name the experiment and variant; attribution credits clicks and purchases once and
logs them; a shadow scores beside and writes only to the shadow topic; the guard rail rolls
a failing variant back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry

from schemas.control import Experiment, Variant
from schemas.events import Event, EventType
from schemas.feedback import Attribution, Served, decode_feedback
from streams.app import create_worker, state_bounds
from streams.ingest.batch import Bundle, encode_bundle
from streams.ops.metrics import create_metrics
from streams.scoring.guard import GuardRail, Verdict
from streams.scoring.plan import Arm, ServingPlan
from streams.scoring.scorer import ScoringStage
from streams.settings import load_settings
from streams.state.agent import StateAgent, StateConfig
from streams.state.store import PartitionStore
from tests.streams.state.test_agent import PARTITION, RecordingProducer, bundle_event

ITEMS = [f"sku-{i}" for i in range(40)]


@dataclass
class FixedScorer:
    """A model that ranks the catalogue in a fixed order, and counts its calls."""

    name: str
    version: str
    order: list[str]
    calls: list[int] = field(default_factory=list)
    fail: bool = False

    def knows(self, item_id: str) -> bool:
        return True

    def recommend(self, histories: Sequence[Sequence[str]], k: int,
                  exclude: Sequence[Collection[str]]) -> list[list[tuple[str, float]]]:
        self.calls.append(len(histories))
        if self.fail:
            raise RuntimeError("broken model")
        return [[(item, float(len(self.order) - i)) for i, item in enumerate(self.order)
                 if item not in seen][:k] for seen in exclude]


EXPERIMENT = Experiment("spring", "5a" * 16,
                        (Variant("A", "m-aaaaaaaaaaaa", 0.5), Variant("B", "m-bbbbbbbbbbbb", 0.5)),
                        Variant("C", "m-cccccccccccc", 0.0), "running", 1, 1)


@pytest.fixture
def models() -> dict[str, FixedScorer]:
    return {"A": FixedScorer("alpha", "1", ITEMS), "B": FixedScorer("beta", "1", ITEMS[::-1]),
            "C": FixedScorer("gamma", "1", ITEMS[2:] + ITEMS[:2])}


def make_agent(tmp_path: Path, plan: ServingPlan, **config: Any
               ) -> tuple[StateAgent, RecordingProducer, list[tuple[Experiment, Verdict]]]:
    settings = load_settings(broker_url="kafka://127.0.0.1:9", data_dir=tmp_path / "state",
                             top_k=5, content_slots=0)
    worker = create_worker(settings, registry=CollectorRegistry())
    stage = ScoringStage(lambda: plan, ThreadPoolExecutor(1))
    producer = RecordingProducer()
    rolled: list[tuple[Experiment, Verdict]] = []

    async def roll_back(experiment: Experiment, verdict: Verdict) -> None:
        rolled.append((experiment, verdict))

    agent = StateAgent(
        StateConfig.from_settings(settings), state_bounds(settings),
        create_metrics(CollectorRegistry()), users=worker.users, trending=worker.trending,
        scoring=stage, producer=producer, recommendations_topic="recommendations",
        guard=GuardRail(**config) if config else None, roll_back=roll_back)
    return agent, producer, rolled


def experiment_plan(models: dict[str, FixedScorer], *, shadow: bool = False) -> ServingPlan:
    arms = {name: Arm(models[name], f"m-{name.lower() * 12}", "spring", name)
            for name in ("A", "B")}
    return ServingPlan(Arm(None, None), EXPERIMENT, MappingProxyType(arms),
                       Arm(models["C"], "m-cccccccccccc", "spring", "C") if shadow else None)


def sent(producer: RecordingProducer, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    return [record for (name, _p), records in producer.sent.items() if name == topic
            for record in records]


def views(users: list[str], now: int, prefix: str = "v") -> bytes:
    return encode_bundle(Bundle(events=[
        Event(f"{prefix}-{u}", EventType.VIEW, u, "sku-0", now) for u in users]))


def test_each_user_is_scored_by_their_variant_with_one_call_per_variant(
        tmp_path: Path, models: dict[str, FixedScorer]) -> None:
    agent, producer, _ = make_agent(tmp_path, experiment_plan(models))
    users = [f"user-{i}" for i in range(60)]
    asyncio.run(agent.process(bundle_event([views(users, int(time.time() * 1000))])))

    messages = [orjson.loads(v) for _k, v in sent(producer, "recommendations")]
    assert sorted(m["user_id"] for m in messages) == sorted(users)
    for message in messages:
        variant = EXPERIMENT.variant_for(message["user_id"]).name
        assert message["experiment"] == {"name": "spring", "variant": variant}
        assert message["model"]["version"] == f"m-{variant.lower() * 12}"
        expected = models[variant].order
        assert [i["item_id"] for i in message["items"]] == expected[:5]
    assert len(models["A"].calls) == 1 and len(models["B"].calls) == 1
    assert sum(models["A"].calls) + sum(models["B"].calls) == len(users)
    assert len({m["recommendation_id"] for m in messages}) == len(users)

    served = [decode_feedback(v) for _k, v in sent(producer, "streamrec.feedback")]
    assert all(isinstance(s, Served) for s in served)
    assert sorted(s.recommendation_id for s in served) == sorted(
        m["recommendation_id"] for m in messages)


def test_clicks_and_purchases_are_credited_once_to_the_recommendation_that_showed_them(
        tmp_path: Path, models: dict[str, FixedScorer]) -> None:
    agent, producer, _ = make_agent(tmp_path, experiment_plan(models))
    now = int(time.time() * 1000)
    asyncio.run(agent.process(bundle_event([views(["u1"], now)])))
    (first,) = [orjson.loads(v) for _k, v in sent(producer, "recommendations")]
    shown = [i["item_id"] for i in first["items"]]
    later = now + 10_000
    by_id = {"recommendation_id": first["recommendation_id"]}
    events = [
        Event("c1", EventType.CLICK, "u1", shown[2], later, properties=by_id),
        Event("c2", EventType.CLICK, "u1", shown[2], later + 1, properties=by_id),  # again
        Event("p1", EventType.PURCHASE, "u1", shown[0], later + 2,
              properties={"price": 12.5, "quantity": 2}),  # by the window rule
        Event("c3", EventType.CLICK, "u1", "sku-never-shown", later + 3),
    ]
    asyncio.run(agent.process(bundle_event([encode_bundle(Bundle(events=events))])))
    # the same click redelivered in a later batch (its event id is a duplicate) earns
    # nothing new: its credit is announced again, uncounted, and the report collapses it
    asyncio.run(agent.process(bundle_event([encode_bundle(Bundle(events=events[:1]))])))

    credits = [r for r in (decode_feedback(v) for _k, v in sent(producer, "streamrec.feedback"))
               if isinstance(r, Attribution)]
    assert [(c.item_id, c.event_type, c.position, c.matched_by, c.revenue) for c in credits] == [
        (shown[2], "click", 3, "recommendation_id", None),
        (shown[0], "purchase", 1, "window", 25.0),
        (shown[2], "click", 3, "recommendation_id", None),
    ]
    assert credits[2] == credits[0]
    variant = EXPERIMENT.variant_for("u1").name
    assert all(c.recommendation_id == first["recommendation_id"] and c.variant == variant
               and c.experiment == "spring" and 5_000 < c.delay_ms <= 10_002 for c in credits)
    metrics = agent.metrics
    assert metrics.attributed.labels("spring", variant, "click")._value.get() == 1
    assert metrics.attributed_revenue.labels("spring", variant)._value.get() == 25.0


@dataclass
class FeedbackRefusingProducer(RecordingProducer):
    """Refuses the feedback topic's record batches while ``refuse`` is set (a crash after
    the state was written and before its attribution records were acknowledged)."""

    refuse: bool = True

    async def send_batch(self, batch: Any, topic: str, *, partition: int
                         ) -> asyncio.Future[Any]:
        if self.refuse and topic == "streamrec.feedback":
            raise KafkaTimeoutError("feedback not acknowledged")
        return await super().send_batch(batch, topic, partition=partition)


def test_attributions_lost_after_the_state_was_written_come_back_with_the_redelivery(
        tmp_path: Path, models: dict[str, FixedScorer]) -> None:
    agent, _, _ = make_agent(tmp_path, experiment_plan(models))
    producer = agent.producer = FeedbackRefusingProducer(refuse=False)
    now = int(time.time() * 1000)
    asyncio.run(agent.process(bundle_event([views(["u1"], now)])))
    (first,) = [orjson.loads(v) for _k, v in sent(producer, "recommendations")]
    shown = [i["item_id"] for i in first["items"]]
    events = [
        Event("c1", EventType.CLICK, "u1", shown[1], now + 10_000,
              properties={"recommendation_id": first["recommendation_id"]}),
        Event("p1", EventType.PURCHASE, "u1", shown[3], now + 10_001,
              properties={"price": 3.0}),  # by the window rule
    ]
    batch = bundle_event([encode_bundle(Bundle(events=events))])
    producer.refuse = True
    with pytest.raises(KafkaTimeoutError):
        asyncio.run(agent.process(batch))
    producer.refuse = False
    asyncio.run(agent.process(batch))  # redelivered: every event is a duplicate now

    credits = [r for r in (decode_feedback(v) for _k, v in sent(producer, "streamrec.feedback"))
               if isinstance(r, Attribution)]
    assert [(c.recommendation_id, c.item_id, c.event_type, c.revenue) for c in credits] == [
        (first["recommendation_id"], shown[1], "click", None),
        (first["recommendation_id"], shown[3], "purchase", 3.0),
    ]
    # the state had been written before the refusal: the redelivery was all duplicates
    assert agent.metrics.duplicates_dropped._value.get() == 2


@dataclass
class FlakyProducer(RecordingProducer):
    """Refuses the first ``refusals`` record batches (a broker that has just restarted)."""

    refusals: int = 3

    async def send_batch(self, batch: Any, topic: str, *, partition: int
                         ) -> asyncio.Future[Any]:
        if self.refusals:
            self.refusals -= 1
            raise KafkaTimeoutError("not yet")
        return await super().send_batch(batch, topic, partition=partition)


def test_a_micro_batch_the_broker_refuses_is_applied_again_not_crashed(
        tmp_path: Path, models: dict[str, FixedScorer]) -> None:
    agent, _, _ = make_agent(tmp_path, experiment_plan(models))
    producer = agent.producer = FlakyProducer(refusals=3)
    now = int(time.time() * 1000)
    asyncio.run(agent.process(bundle_event([views(["u1", "u2"], now)])))
    assert agent.metrics.state_batch_retries._value.get() == 3
    assert sorted(orjson.loads(v)["user_id"] for _k, v in sent(producer, "recommendations")
                  ) == ["u1", "u2"]
    # the retry's events were duplicates (the refused attempt had written the state), yet
    # the trending board's changelog record, lost with the refused attempt, is written
    board_log = PartitionStore(agent.trending, PARTITION).changelog_topic
    assert [key for key, _ in producer.sent[(board_log, PARTITION)]] == [
        f"p{PARTITION}".encode()]


def test_a_shadow_scores_every_user_and_writes_only_to_the_shadow_topic(
        tmp_path: Path, models: dict[str, FixedScorer]) -> None:
    agent, producer, _ = make_agent(tmp_path, experiment_plan(models, shadow=True))
    users = [f"user-{i}" for i in range(20)]
    asyncio.run(agent.process(bundle_event([views(users, int(time.time() * 1000))])))

    live = {orjson.loads(v)["user_id"]: orjson.loads(v) for _k, v in
            sent(producer, "recommendations")}
    shadow = {orjson.loads(v)["user_id"]: orjson.loads(v) for _k, v in
              sent(producer, "recommendations.shadow")}
    assert set(shadow) == set(live) == set(users)
    assert all(m["model"]["name"] == "gamma" and m["experiment"]["variant"] == "C"
               for m in shadow.values())
    assert all(m["model"]["name"] in ("alpha", "beta") for m in live.values())
    assert sum(models["C"].calls) == len(users) and len(models["C"].calls) == 1
    # A users share sku-2..4 with the shadow (3 of 5), B users nothing
    on_a = sum(1 for u in users if EXPERIMENT.variant_for(u).name == "A")
    assert agent.metrics.shadow_overlap._sum.get() == pytest.approx(0.6 * on_a)
    assert agent.metrics.shadow_recommendations._value.get() == len(users)


def test_the_guard_rail_rolls_back_a_variant_whose_model_fails(
        tmp_path: Path, models: dict[str, FixedScorer]) -> None:
    models["B"].fail = True
    agent, producer, rolled = make_agent(tmp_path, experiment_plan(models),
                                         max_p_value=0.001, min_users=30)
    users = [f"user-{i}" for i in range(200)]
    asyncio.run(agent.process(bundle_event([views(users, int(time.time() * 1000))])))

    assert len(rolled) == 1
    experiment, verdict = rolled[0]
    assert experiment.name == "spring" and verdict.variant == "B"
    assert verdict.failures == verdict.users and verdict.control_failures == 0
    assert agent.metrics.guard_rollbacks.labels("spring", "B")._value.get() == 1
    failed = [orjson.loads(v) for _k, v in sent(producer, "recommendations")
              if orjson.loads(v)["experiment"]["variant"] == "B"]
    assert failed and all(m["fallback"] == "scoring_error" for m in failed)
