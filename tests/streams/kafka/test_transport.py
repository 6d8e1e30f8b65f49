"""The worker's aiokafka consumer takes its fetch wait from settings, not Faust's 1500 ms.

No broker is needed: aiokafka builds a consumer without connecting (it connects in
``start()``), so the consumer Faust would run can be built and inspected, then closed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from streams.app import StreamrecApp, create_faust_app
from streams.kafka.transport import StreamrecConsumerThread
from streams.settings import load_settings


def make_app(tmp_path: Path, fetch_wait_s: float, *, broker_keeps_data: bool = True
             ) -> StreamrecApp:
    app = create_faust_app(load_settings(
        broker_url="kafka://127.0.0.1:9",  # never contacted
        broker_fetch_max_wait_s=fetch_wait_s,
        data_dir=tmp_path / "state",
    ), broker_keeps_data=broker_keeps_data)
    assert isinstance(app, StreamrecApp)
    return app


async def worker_consumer_fetch_wait_ms(app: StreamrecApp) -> int:
    """Build the worker's aiokafka consumer the way Faust does at start, and read its wait."""
    consumer_service: Any = app.consumer
    thread = consumer_service._thread  # what Faust starts for the worker's consumer
    assert isinstance(thread, StreamrecConsumerThread)
    consumer = thread._create_worker_consumer(app.transport)
    try:
        return int(consumer._fetch_max_wait_ms)
    finally:
        await consumer.stop()  # closes the (never connected) client
        thread.thread_loop.close()  # the thread's own loop, created with it, never run


@pytest.mark.parametrize(("seconds", "millis"), [(0.03, 30), (0.001, 1), (2.5, 2500)])
def test_the_app_carries_the_fetch_wait_in_milliseconds(
    tmp_path: Path, seconds: float, millis: int
) -> None:
    assert make_app(tmp_path, seconds).fetch_max_wait_ms == millis


@pytest.mark.parametrize("broker_keeps_data", [True, False])
def test_the_worker_consumer_uses_the_apps_fetch_wait(
    tmp_path: Path, broker_keeps_data: bool
) -> None:
    app = make_app(tmp_path, 0.03, broker_keeps_data=broker_keeps_data)
    assert asyncio.run(worker_consumer_fetch_wait_ms(app)) == 30  # Faust alone: 1500


@pytest.mark.parametrize("broker_keeps_data", [True, False])
def test_recovery_consistency_check_is_off_only_for_a_broker_that_forgets(
    tmp_path: Path, broker_keeps_data: bool
) -> None:
    app = make_app(tmp_path, 0.02, broker_keeps_data=broker_keeps_data)
    assert app.conf.recovery_consistency_check is broker_keeps_data
