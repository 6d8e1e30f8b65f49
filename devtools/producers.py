"""Publishing with confluent-kafka, an independent client, for the tools and the tests.

The demo, the benchmark, the soak and the tests all produce through :func:`produce`, so
every such producer waits for room in the same way when its local queue is full.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from streams.errors import BrokerUnavailableError
from streams.kafka.clients import librdkafka_config
from streams.settings import Settings


def produce(producer: Any, topic: str, key: bytes | None, value: bytes | None, *,
            on_delivery: Callable[[Any, Any], None] | None = None,
            retry_poll_s: float = 0.05) -> None:
    """``producer.produce`` (a confluent-kafka Producer) that never gives up on a full
    local queue: on ``BufferError`` it serves delivery reports for ``retry_poll_s`` seconds
    (which frees room) and tries again."""
    extra = {} if on_delivery is None else {"on_delivery": on_delivery}
    while True:
        try:
            producer.produce(topic, key=key, value=value, **extra)
            return
        except BufferError:
            producer.poll(retry_poll_s)


def send_raw(settings: Settings, messages: Iterable[tuple[str, bytes | None, bytes | None]],
             *, flush_timeout_s: float = 30.0, **config: Any) -> int:
    """Send raw ``(topic, key, value)`` messages as they are and wait for their delivery;
    returns how many were sent. ``config`` adds librdkafka settings (e.g. ``linger.ms``).

    Raises BrokerUnavailableError when some were still undelivered after
    ``flush_timeout_s``."""
    from confluent_kafka import Producer

    producer = Producer(librdkafka_config(settings, **config))
    count = 0
    for topic, key, value in messages:
        produce(producer, topic, key, value)
        producer.poll(0)
        count += 1
    left = producer.flush(flush_timeout_s)
    if left:
        raise BrokerUnavailableError(
            f"{left} of {count} messages were not delivered to {settings.broker_url} within "
            f"{flush_timeout_s:.0f}s"
        )
    return count
