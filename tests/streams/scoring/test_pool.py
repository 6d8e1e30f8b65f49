"""The model pool: versions load off the event loop, the plan swaps only once a version is
loaded and checked, a failure leaves the serving version in place and is reported."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pytest
from prometheus_client import CollectorRegistry

from schemas.control import TRENDING_VERSION, Experiment, Promotion, Variant
from streams.control.topic import ControlSnapshot
from streams.ops.metrics import create_metrics
from streams.scoring.pool import ModelPool


@dataclass
class Loaded:
    name: str
    version: str
    thread: str

    def knows(self, item_id: str) -> bool:
        return True

    def recommend(self, histories, k, exclude):  # noqa: ANN001, ANN201 - not called here
        return [[] for _ in histories]


class Loader:
    """Loads "model directories" named after versions; "bad-*" fail, "slow-*" wait for a gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.loaded: list[str] = []

    def __call__(self, path: Path) -> Loaded:
        version = path.name
        if version.startswith("slow"):
            self.gate.wait(10)
        if version.startswith("bad"):
            raise ValueError(f"{version}: scores are NaN")
        self.loaded.append(version)
        return Loaded("m", version, threading.current_thread().name)


def snapshot(promoted: str | None, experiment: Experiment | None = None) -> ControlSnapshot:
    promotion = None if promoted is None else Promotion(promoted, (), 1, "promote")
    experiments = {} if experiment is None else {experiment.name: experiment}
    return ControlSnapshot(promotion, MappingProxyType(experiments))


def make_pool(loader: Loader, timeout_s: float = 30.0) -> ModelPool:
    return ModelPool(locate=lambda v: Path("/registry") / v, load=loader,
                     loader=ThreadPoolExecutor(1, thread_name_prefix="model-loader"),
                     metrics=create_metrics(CollectorRegistry()), timeout_s=timeout_s)


async def settle(pool: ModelPool) -> None:
    while pool._loading:  # noqa: SLF001 - wait for the background loads the test started
        await asyncio.gather(*pool._loading.values())  # noqa: SLF001


def test_a_promotion_serves_once_loaded_on_the_loader_thread() -> None:
    async def scenario() -> None:
        loader = Loader()
        pool = make_pool(loader)
        assert not pool.synced
        pool.apply(snapshot("v1"))
        assert pool.plan().default.version is None and not pool.synced  # still loading
        await settle(pool)
        default = pool.plan().default
        assert default.version == "v1" and pool.synced
        assert default.scorer is not None
        assert default.scorer.thread.startswith("model-loader")  # type: ignore[attr-defined]
        assert pool.metrics.model_swaps._value.get() == 1

        pool.apply(snapshot("v2", None))
        before = pool.plan()
        assert before.default.version == "v1"  # v1 serves until v2 is ready
        await settle(pool)
        assert pool.plan().default.version == "v2"
        assert "v1" not in pool._loaded  # noqa: SLF001 - no longer wanted: dropped

        pool.apply(ControlSnapshot(Promotion("v3", ("v2",), 2, "promote"),
                                   MappingProxyType({})))
        await settle(pool)
        assert set(pool._loaded) == {"v2", "v3"}  # noqa: SLF001 - the previous one stays
        loads = len(pool.load.loaded)  # type: ignore[attr-defined]
        pool.apply(snapshot("v2"))  # rollback: no load, the swap is immediate
        assert pool.plan().default.version == "v2" and not pool._loading  # noqa: SLF001
        assert len(pool.load.loaded) == loads  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_a_version_that_fails_to_load_never_serves_and_is_reported() -> None:
    async def scenario() -> None:
        pool = make_pool(Loader())
        pool.apply(snapshot("v1"))
        await settle(pool)
        pool.apply(snapshot("bad-v2"))
        await settle(pool)
        assert pool.plan().default.version == "v1"
        assert pool.synced  # settled: the failure is known
        status = pool.status()
        assert status["promoted"] == "v1"
        assert "NaN" in status["failed"]["bad-v2"]
        assert pool.metrics.model_load_failed._value.get() == 1
        assert pool.metrics.model_loads.labels(outcome="failed")._value.get() == 1
        pool.apply(snapshot("v1"))  # rolled back: the failed version is no longer wanted
        assert pool.metrics.model_load_failed._value.get() == 0

    asyncio.run(scenario())


def test_a_load_past_the_timeout_counts_as_failed() -> None:
    async def scenario() -> None:
        loader = Loader()
        pool = make_pool(loader, timeout_s=0.05)
        pool.apply(snapshot("slow-v1"))
        await settle(pool)
        loader.gate.set()
        assert pool.plan().default.version is None
        assert "longer than" in pool.status()["failed"]["slow-v1"]

    asyncio.run(scenario())


EXPERIMENT = Experiment("spring", "ab" * 16,
                        (Variant("A", "v1", 0.5), Variant("B", "v2", 0.5)),
                        Variant("C", "v3", 0.0), "running", 1, 1)


def test_an_experiment_serves_only_when_every_variant_is_loaded() -> None:
    async def scenario() -> None:
        pool = make_pool(Loader())
        pool.apply(snapshot("v1", EXPERIMENT))
        assert pool.plan().experiment is None
        assert pool.status()["experiment_waiting"] == "loading its variants"
        await settle(pool)
        plan = pool.plan()
        assert plan.experiment is not None and set(plan.arms) == {"A", "B"}
        assert plan.arms["B"].version == "v2" and plan.shadow is not None
        assert plan.shadow.version == "v3"

        pool.stop_here("spring", "guard rail")
        assert pool.plan().experiment is None
        assert "guard rail" in pool.status()["experiment_waiting"]

    asyncio.run(scenario())


def test_an_experiment_with_a_failed_variant_is_not_served() -> None:
    async def scenario() -> None:
        pool = make_pool(Loader())
        broken = Experiment("spring", "ab" * 16,
                            (Variant("A", "v1", 0.5), Variant("B", "bad-v2", 0.5)),
                            None, "running", 1, 1)
        pool.apply(snapshot("v1", broken))
        await settle(pool)
        assert pool.plan().experiment is None and pool.plan().default.version == "v1"
        assert "bad-v2 failed to load" in pool.status()["experiment_waiting"]

    asyncio.run(scenario())


@pytest.mark.parametrize("promoted", [None, TRENDING_VERSION])
def test_nothing_promoted_or_trending_serves_without_a_model(promoted: str | None) -> None:
    async def scenario() -> None:
        pool = make_pool(Loader())
        pool.apply(snapshot(promoted))
        assert pool.synced and pool.plan().default.scorer is None

    asyncio.run(scenario())


def test_waiting_for_the_first_sync_returns_once_the_promoted_version_settled() -> None:
    async def scenario() -> None:
        pool = make_pool(Loader())
        waiter = asyncio.ensure_future(pool.wait_synced())
        await asyncio.sleep(0)
        assert not waiter.done()
        pool.apply(snapshot("v1"))
        await asyncio.sleep(0)
        assert not waiter.done()  # loading
        await settle(pool)
        await asyncio.wait_for(waiter, 5)
        pool.apply(snapshot("v2"))  # later promotions never block anyone
        await asyncio.wait_for(pool.wait_synced(), 1)

    asyncio.run(scenario())
