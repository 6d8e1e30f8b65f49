"""Fixtures shared by every test level: one real Tansu broker per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.broker import EmbeddedBroker, start_broker


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """A real Kafka-protocol broker (Tansu, in memory) on a free loopback port."""
    running = start_broker()
    yield running
    running.stop()
