"""Clients for the services around streamrec: publish events, read recommendations.

:class:`EventProducer` (kafka-python) validates each event with the worker's own decoder,
sends it to its type's topic keyed by user id, and sends erasure requests.
:class:`RecommendationConsumer` (confluent-kafka) yields decoded recommendation messages,
tombstones (erased users) included. Both read the broker settings from ``STREAMREC_*``
(:class:`streams.settings.Settings`); runnable examples are in ``examples/``.
"""

from streams.client.consumer import RecommendationConsumer, RecommendationMessage
from streams.client.producer import EventProducer

__all__ = ["EventProducer", "RecommendationConsumer", "RecommendationMessage"]
