"""kafka-python configuration derived from the settings: bootstrap servers, TLS and SASL.

The worker (aiokafka), the tools (confluent-kafka, :func:`streams.kafka.clients.librdkafka_config`)
and the producer client must agree on how to reach the broker; this is the kafka-python side
of the same settings, and it reuses the worker's TLS context
(:func:`streams.kafka.clients.ssl_context`).
"""

from __future__ import annotations

from typing import Any

from streams.kafka.clients import ssl_context
from streams.settings import Settings


def kafka_python_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """``KafkaProducer`` / ``KafkaConsumer`` keyword arguments for the configured broker.

    >>> kafka_python_config(Settings(broker_url="kafka://a:9092;kafka://b:9092"))
    {'bootstrap_servers': ['a:9092', 'b:9092'], 'security_protocol': 'PLAINTEXT'}
    """
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.broker_security_protocol,
    }
    if settings.broker_security_protocol.startswith("SASL"):
        config["sasl_mechanism"] = settings.broker_sasl_mechanism
        config["sasl_plain_username"] = settings.broker_sasl_username
        config["sasl_plain_password"] = settings.broker_sasl_password or ""
    context = ssl_context(settings)
    if context is not None:
        config["ssl_context"] = context
    config.update(extra)
    return config


