"""Publish events to streamrec: validated, routed and keyed the way the worker expects.

:class:`EventProducer` takes an event as a dict shaped like ``schemas/event.schema.json``
and, before anything leaves the process:

* **validates** it with the worker's own decoder (:func:`schemas.events.decode_event`, with
  the payload size and timestamp limits from the same settings). An event the worker would
  dead-letter raises :class:`~streams.errors.InvalidEventError` here instead, naming the
  field, so a producer bug shows up in the producer's logs and tests, not in
  ``streamrec.dlq``. The timestamp window is checked against this machine's clock.
* **routes** it to the input topic for its type (``Settings.topic_for``: views, clicks,
  purchases; ``add_to_cart`` goes where ``STREAMREC_ADD_TO_CART_TOPIC`` says). On any other
  topic the worker dead-letters it as ``wrong_topic``.
* **keys** it by ``user_id`` (UTF-8). The partition is then Kafka's default murmur2 partition
  of the user id, the same one the worker keeps that user's state in
  (:func:`streams.kafka.partitioning.user_partition`), so a user's events stay in order on
  one partition from the producer onwards.

It also sends erasure requests (:meth:`EventProducer.request_erasure`, what ``streamrec
erase-user`` runs).

Why kafka-python: a pure-Python client (no native library to install in the services that
emit events, e.g. a web shop's request handlers), thread-safe so one producer can be shared
by every thread of such a service, and each send returns a future with the record's
partition and offset. The stream worker and the tools use aiokafka and confluent-kafka;
all three take their broker, TLS and SASL configuration from the same settings.

Example (needs a broker and the topics, ``streamrec topics create``)::

    from streams.client import EventProducer
    from streams.settings import Settings

    with EventProducer(Settings(broker_url="kafka://localhost:9092")) as producer:
        producer.send({"event_id": "e-1", "event_type": "view", "user_id": "u-1",
                       "item_id": "sku-9", "timestamp": "2026-11-23T18:00:00.123Z"})
    # leaving the block flushes: every event is acknowledged, or DeliveryError is raised

``send`` is asynchronous (it returns once the event is buffered); ``flush`` waits for the
broker's acknowledgements and raises :class:`~streams.errors.DeliveryError` if any event
since the last flush was not written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from schemas.events import DecodeLimits, Event, Rejection, decode_event
from schemas.reasons import RejectReason
from streams.client.config import kafka_python_config
from streams.errors import (
    BrokerUnavailableError,
    DeliveryError,
    InvalidEventError,
    TopicSetupError,
)
from streams.ingest.batch import decode_erasure
from streams.settings import Settings, load_settings

log = logging.getLogger(__name__)

PRODUCER_DEFAULTS: dict[str, Any] = {
    # Topics are created by `streamrec topics create` with the partition count the worker
    # expects; a topic auto-created by a producer's typo would get the broker's default.
    "allow_auto_create_topics": False,
    "acks": "all",
    "linger_ms": 5,
    # How long send() may block waiting for topic metadata or buffer space (kafka-python's
    # default is a minute).
    "max_block_ms": 15_000,
    "bootstrap_timeout_ms": 10_000,
}


class EventProducer:
    """Validated, routed, user-keyed event publishing (see the module docstring).

    ``settings`` default to the ``STREAMREC_*`` environment (:func:`load_settings`); only
    the broker, topic and input-limit settings are used. ``kafka_config`` overrides or adds
    kafka-python ``KafkaProducer`` options (e.g. ``linger_ms=50``, ``client_id="shop"``).
    Raises :class:`~streams.errors.BrokerUnavailableError` when no broker answers, and
    :class:`~streams.errors.TopicSetupError` when an input topic does not exist (brokers that
    create topics on first use would otherwise create it with their default partition count;
    ``check_topics=False`` skips the check, e.g. where the producer may not describe topics).
    """

    def __init__(self, settings: Settings | None = None, *, check_topics: bool = True,
                 **kafka_config: Any) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.limits: DecodeLimits = self.settings.decode_limits()
        config = kafka_python_config(self.settings, **{**PRODUCER_DEFAULTS, **kafka_config})
        try:
            if check_topics:
                self._check_topics(config)
            self._producer = KafkaProducer(**config)
        except KafkaError as exc:  # kafka-python 3 raises KafkaTimeoutError: no broker
            raise BrokerUnavailableError(
                f"no Kafka broker answered at {self.settings.broker_url}: {exc}") from exc
        self._lock = threading.Lock()
        self._failed = 0
        self._first_failure: str | None = None

    # --- sending --------------------------------------------------------------------------

    def validate(self, event: Mapping[str, Any] | Event | bytes) -> tuple[Event, bytes]:
        """The decoded event and the exact bytes :meth:`send` would publish; raises
        :class:`~streams.errors.InvalidEventError` for an event the worker would reject."""
        value = _encode(event)
        # The topic is chosen from the event type below, so no routing restriction here.
        decoded = decode_event(value, "", self.limits)
        if isinstance(decoded, Rejection):
            raise InvalidEventError(
                f"invalid event ({decoded.reason}): {decoded.detail}; nothing was sent",
                reason=decoded.reason.value, detail=decoded.detail, event_id=decoded.event_id,
            )
        return decoded, value

    def send(self, event: Mapping[str, Any] | Event | bytes) -> Any:
        """Validate ``event``, then send it to its type's topic keyed by its user id.

        ``event`` is a dict as in ``schemas/event.schema.json`` (``timestamp`` as an RFC 3339
        string with an offset, or integer ms since the epoch), an
        :class:`~schemas.events.Event`, or its UTF-8 JSON bytes. Returns kafka-python's
        future: ``.get(timeout=10)`` gives the record's topic, partition and offset.
        Raises :class:`~streams.errors.InvalidEventError` (nothing sent) or
        :class:`~streams.errors.DeliveryError` (the topic's metadata did not arrive in
        time: does the topic exist?).
        """
        decoded, value = self.validate(event)
        return self._send(self.settings.topic_for(decoded.event_type), decoded.user_id, value)

    def request_erasure(self, user_id: str) -> Any:
        """Ask the workers to erase ``user_id``'s state and last recommendation (right to
        erasure): ``{"user_id": ...}`` on ``STREAMREC_TOPIC_USER_ERASURE``. Pass the user id
        as producers send it; the worker pseudonymises it when that is configured.
        Asynchronous like :meth:`send`: :meth:`flush` to know it was written."""
        value = orjson.dumps({"user_id": user_id})
        decoded = decode_erasure(value)
        if isinstance(decoded, Rejection):
            raise InvalidEventError(
                f"invalid erasure request ({decoded.reason}): {decoded.detail}; nothing was "
                "sent",
                reason=decoded.reason.value, detail=decoded.detail,
            )
        return self._send(self.settings.topic_user_erasure, decoded, value)

    def flush(self, timeout_s: float | None = 30.0) -> None:
        """Wait until every message sent so far is acknowledged by the broker.

        Raises :class:`~streams.errors.DeliveryError` when some were not (since the last
        flush), or when ``timeout_s`` passed first.
        """
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaTimeoutError as exc:
            raise DeliveryError(
                f"messages still unacknowledged after {timeout_s} s: is the broker at "
                f"{self.settings.broker_url} reachable?") from exc
        with self._lock:
            failed, first = self._failed, self._first_failure
            self._failed, self._first_failure = 0, None
        if failed:
            raise DeliveryError(f"{failed} message(s) were not written; first error: {first}")

    def close(self, timeout_s: float | None = 30.0) -> None:
        """Flush (raising :class:`~streams.errors.DeliveryError` as :meth:`flush` does),
        then release the connections; the producer is closed even when the flush fails."""
        try:
            self.flush(timeout_s)
        finally:
            self._producer.close(timeout=timeout_s)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the block's own exception is the one to report; keep it
            self.close()
        except DeliveryError as close_error:
            log.warning("while handling %s: %s", exc_type.__name__, close_error)

    # --- internals ------------------------------------------------------------------------

    def _check_topics(self, config: dict[str, Any]) -> None:
        from kafka.admin import KafkaAdminClient

        settings = self.settings
        wanted = sorted({*settings.input_topics, settings.topic_user_erasure})
        admin = KafkaAdminClient(**{key: value for key, value in config.items()
                                    if key in KafkaAdminClient.DEFAULT_CONFIG})
        try:
            described = admin.describe_topics(wanted)  # never creates a topic
        finally:
            admin.close()
        found = {t["name"]: len(t["partitions"]) for t in described if not t["error_code"]}
        missing = [topic for topic in wanted if topic not in found]
        if missing:
            raise TopicSetupError(
                f"topic(s) {', '.join(missing)} do not exist on {settings.broker_url}: create "
                "streamrec's topics with `streamrec topics create`, or check that the "
                "STREAMREC_TOPIC_* settings match the workers'")
        for topic in wanted:
            if found[topic] != settings.topic_partitions:
                log.warning(
                    "topic %s has %d partitions, STREAMREC_TOPIC_PARTITIONS says %d: give the "
                    "producer the workers' settings (events are still processed correctly)",
                    topic, found[topic], settings.topic_partitions)

    def _send(self, topic: str, user_id: str, value: bytes) -> Any:
        try:
            future = self._producer.send(topic, key=user_id.encode("utf-8"), value=value)
        except KafkaTimeoutError as exc:
            raise DeliveryError(
                f"no metadata for topic {topic!r} within the producer's max_block_ms: does it "
                f"exist? (create every topic with `streamrec topics create`)") from exc
        future.add_errback(self._on_error, topic)
        return future

    def _on_error(self, topic: str, error: BaseException) -> None:
        with self._lock:
            self._failed += 1
            if self._first_failure is None:
                self._first_failure = f"{topic}: {type(error).__name__}: {error}"
        log.debug("delivery to %s failed: %s", topic, error)


def _encode(event: Mapping[str, Any] | Event | bytes) -> bytes:
    if isinstance(event, bytes | bytearray | memoryview):
        return bytes(event)
    if isinstance(event, Event):
        document = event.to_json_dict()
    elif isinstance(event, Mapping):
        document = dict(event)
    else:
        raise InvalidEventError(
            f"an event is a dict (or an Event, or JSON bytes), not {type(event).__name__}; "
            "nothing was sent",
            reason=RejectReason.NOT_AN_OBJECT.value, detail=type(event).__name__,
        )
    try:
        return orjson.dumps(document)
    except TypeError as exc:  # orjson.JSONEncodeError: a value JSON cannot hold
        raise InvalidEventError(
            f"event is not serialisable as JSON: {exc}; nothing was sent",
            reason=RejectReason.INVALID_JSON.value, detail=str(exc),
        ) from exc
