"""The broker probe behind /readyz, with a fake client and clock (no broker)."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.ops.health import BrokerHealth


class FakeClient:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.closed = False

    async def fetch_all_metadata(self) -> Any:
        if not self.cluster.up:
            raise ConnectionError("broker down")
        if self.cluster.hang:
            await asyncio.sleep(3600)
        return object()

    async def close(self) -> None:
        self.closed = True


class FakeCluster:
    def __init__(self) -> None:
        self.up = True
        self.hang = False
        self.clients: list[FakeClient] = []

    async def connect(self) -> FakeClient:
        if not self.up:
            raise ConnectionError("connection refused")
        client = FakeClient(self)
        self.clients.append(client)
        return client


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def probe(health: BrokerHealth) -> bool:
    return asyncio.run(health.probe_once())


def test_unreachable_until_the_first_answer_then_reachable() -> None:
    cluster, clock = FakeCluster(), Clock()
    health = BrokerHealth(cluster.connect, stale_after_s=5.0, clock=clock)
    assert not health.reachable
    assert probe(health)
    assert health.reachable and health.status() == {
        "reachable": True, "last_ok_s_ago": 0.0, "error": None}
    assert len(cluster.clients) == 1
    assert probe(health) and len(cluster.clients) == 1  # the connection is reused


def test_goes_stale_while_the_broker_is_down_and_recovers_with_a_new_client() -> None:
    cluster, clock = FakeCluster(), Clock()
    health = BrokerHealth(cluster.connect, stale_after_s=5.0, clock=clock)
    assert probe(health)
    cluster.up = False
    clock.now += 1
    assert not probe(health)
    assert cluster.clients[0].closed
    assert health.reachable  # one failed probe within the staleness allowance
    clock.now += 5
    assert not probe(health)  # reconnecting fails too
    assert not health.reachable
    assert "connection refused" in (health.status()["error"] or "")
    cluster.up = True
    clock.now += 1
    assert probe(health) and health.reachable and health.last_error is None
    assert len(cluster.clients) == 2


def test_a_hanging_broker_times_out() -> None:
    cluster, clock = FakeCluster(), Clock()
    health = BrokerHealth(cluster.connect, timeout_s=0.05, stale_after_s=0.0, clock=clock)
    cluster.hang = True
    assert not probe(health)
    assert health.last_error is not None and "Timeout" in health.last_error
    assert not health.reachable
