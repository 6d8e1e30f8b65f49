"""kafka-python configuration derived from the settings: bootstrap servers, TLS and SASL.

The worker (aiokafka), the tools (confluent-kafka, :func:`streams.kafka.clients.librdkafka_config`)
and the producer client must agree on how to reach the broker; this is the kafka-python side
of the same settings, and it reuses the worker's TLS context
(:func:`streams.kafka.clients.aiokafka_auth`, the same names aiokafka takes).
"""

from __future__ import annotations

from typing import Any

from streams.kafka.clients import aiokafka_auth
from streams.settings import Settings


def kafka_python_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """``KafkaProducer`` / ``KafkaConsumer`` keyword arguments for the configured broker.

    >>> kafka_python_config(Settings(broker_url="kafka://a:9092;kafka://b:9092"))
    {'bootstrap_servers': ['a:9092', 'b:9092'], 'security_protocol': 'PLAINTEXT'}
    """
    config: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers,
                              **aiokafka_auth(settings)}
    config.update(extra)
    return config


