"""Recognise the embedded development broker, which forgets everything when it restarts.

``streamrec broker`` (and the demo, benchmarks and tests) run Tansu with in-memory storage
under the cluster id :data:`EMBEDDED_CLUSTER_ID`. A worker asks the cluster for its id once
at start-up: on that broker a restart empties every changelog while the offsets persisted in
the worker's local RocksDB stay, so Faust's recovery consistency check must be off there (see
:func:`streams.app.create_faust_app`). Every other cluster id — Apache Kafka, a Tansu with
durable storage — keeps the check. No setting is involved: nothing to forget, nothing to set
wrongly against production.
"""

from __future__ import annotations

import logging

from streams.kafka.clients import librdkafka_config
from streams.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_CLUSTER_ID = "streamrec-embedded-in-memory"
"""The cluster id the embedded broker is started with."""


def cluster_id(settings: Settings, timeout_s: float = 10.0) -> str | None:
    """The broker cluster's id from a metadata request; None when no broker answered."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(librdkafka_config(settings))
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        log.warning("no broker answered within %.0f s (%s); assuming it keeps its data",
                    timeout_s, exc)
        return None
    return str(metadata.cluster_id) if metadata.cluster_id else None


def broker_keeps_data(settings: Settings, timeout_s: float = 10.0) -> bool:
    """False only for the embedded in-memory broker (see the module docstring)."""
    embedded = cluster_id(settings, timeout_s) == EMBEDDED_CLUSTER_ID
    if embedded:
        log.info("embedded in-memory broker detected: recovery consistency check off")
    return not embedded
