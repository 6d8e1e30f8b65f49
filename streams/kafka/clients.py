"""Kafka client configuration derived from the settings, for every client streamrec makes.

The worker (Faust/aiokafka) and the tools (confluent-kafka: topic admin, demo producer,
test clients) must agree on TLS and SASL; both configurations come from here.
"""

from __future__ import annotations

import ssl
from typing import Any

from streams.settings import Settings


def librdkafka_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """confluent-kafka (librdkafka) configuration: bootstrap servers, TLS and SASL."""
    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(settings.bootstrap_servers),
        "security.protocol": settings.broker_security_protocol.lower(),
    }
    if settings.broker_security_protocol.startswith("SASL"):
        config["sasl.mechanism"] = settings.broker_sasl_mechanism
        config["sasl.username"] = settings.broker_sasl_username
        config["sasl.password"] = settings.broker_sasl_password or ""
    if settings.broker_security_protocol.endswith("SSL"):
        if settings.broker_ssl_cafile:
            config["ssl.ca.location"] = str(settings.broker_ssl_cafile)
        if settings.broker_ssl_certfile:
            config["ssl.certificate.location"] = str(settings.broker_ssl_certfile)
        if settings.broker_ssl_keyfile:
            config["ssl.key.location"] = str(settings.broker_ssl_keyfile)
    config.update(extra)
    return config


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS context for aiokafka when the protocol uses SSL, else None."""
    if not settings.broker_security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.broker_ssl_cafile) if settings.broker_ssl_cafile else None
    )
    if settings.broker_ssl_certfile:
        context.load_cert_chain(
            str(settings.broker_ssl_certfile),
            str(settings.broker_ssl_keyfile) if settings.broker_ssl_keyfile else None,
        )
    return context


def aiokafka_auth(settings: Settings) -> dict[str, Any]:
    """TLS and SASL keyword arguments for aiokafka clients outside Faust (kafka-python takes
    the same names): what Faust derives for the worker from :func:`faust_credentials`.

    >>> aiokafka_auth(Settings())
    {'security_protocol': 'PLAINTEXT'}
    """
    kwargs: dict[str, Any] = {"security_protocol": settings.broker_security_protocol}
    if settings.broker_security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = settings.broker_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.broker_sasl_username
        kwargs["sasl_plain_password"] = settings.broker_sasl_password or ""
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    return kwargs


def faust_credentials(settings: Settings) -> Any:
    """Faust ``broker_credentials`` for the configured protocol (None for PLAINTEXT)."""
    import faust

    protocol = settings.broker_security_protocol
    context = ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if protocol.startswith("SASL"):
        username = settings.broker_sasl_username or ""
        password = settings.broker_sasl_password or ""
        if settings.broker_sasl_mechanism == "PLAIN":
            return faust.SASLCredentials(
                username=username, password=password, ssl_context=context
            )
        return faust.SASLCredentials(
            username=username,
            password=password,
            mechanism=settings.broker_sasl_mechanism,
            ssl_context=context,
        )
    return None
