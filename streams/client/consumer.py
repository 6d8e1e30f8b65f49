"""Read streamrec's recommendations: one message per user whenever their state changes.

Each message on ``STREAMREC_TOPIC_RECOMMENDATIONS`` is keyed by ``user_id`` and holds the
user's current recommendation (``schemas/recommendation.schema.json``): the newest message
for a user supersedes every older one, so a consumer that keeps "user -> latest message"
(a cache, a key-value store) has every user's current list, and a new consumer group that
reads the topic from the beginning rebuilds it.

A message whose value is **null is a tombstone**: the user's recommendations were erased
(``streamrec erase-user``, the right to erasure). :class:`RecommendationMessage` marks it
``erased``; delete everything you keep for that user. Do not skip tombstones: they are how
an erasure reaches your copy.

    from streams.client import RecommendationConsumer
    from streams.settings import Settings

    cache = {}
    with RecommendationConsumer(Settings(broker_url="kafka://localhost:9092"),
                                group_id="recommendation-cache") as consumer:
        for message in consumer:  # runs until interrupted; see messages() to stop when idle
            if message.erased:
                cache.pop(message.user_id, None)
            else:
                cache[message.user_id] = message.item_ids

Why confluent-kafka here (the producer client uses kafka-python): a consumer's work is group
membership, rebalancing, fetching and offset commits, which librdkafka does in its own
threads in C, several times faster than a pure-Python client; it is the client streamrec's
tools and tests already use against both Apache Kafka and the embedded broker, and its TLS
and SASL configuration comes from the same helper
(:func:`streams.kafka.clients.librdkafka_config`).

Messages are decoded as JSON but not validated against the schema: streamrec validated each
one before producing it, and the schema asks consumers to ignore fields they do not know
(later versions may add some). A value that is not a JSON object was not written by
streamrec; it is logged and skipped (``skipped`` counts them), never allowed to stop the
consumer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson

from streams.errors import BrokerUnavailableError
from streams.kafka.clients import librdkafka_config
from streams.settings import Settings, load_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecommendationMessage:
    """One message of the recommendations topic. ``recommendation`` is the decoded JSON
    document, or None for a tombstone (the user was erased)."""

    user_id: str
    recommendation: dict[str, Any] | None
    partition: int
    offset: int

    @property
    def erased(self) -> bool:
        """A tombstone: the user's recommendations were erased; drop what you keep."""
        return self.recommendation is None

    @property
    def item_ids(self) -> list[str]:
        """The recommended item ids, best first ([] for a tombstone)."""
        if self.recommendation is None:
            return []
        return [item["item_id"] for item in self.recommendation.get("items", [])]


class RecommendationConsumer:
    """Decoded messages of the recommendations topic, as a member of consumer group
    ``group_id`` (see the module docstring).

    ``from_beginning``: where a group with no committed offset starts; True (the default)
    reads every user's latest recommendation first. Offsets are committed automatically
    (every 5 s) for the messages this consumer has handed out. The session timeout and
    heartbeat interval are the workers' (``STREAMREC_BROKER_SESSION_TIMEOUT_S``,
    ``STREAMREC_BROKER_HEARTBEAT_INTERVAL_S``). ``librdkafka`` overrides or
    adds confluent-kafka ``Consumer`` options (dotted names, e.g.
    ``{"session.timeout.ms": 45000}``).
    """

    def __init__(self, settings: Settings | None = None, *, group_id: str,
                 from_beginning: bool = True,
                 librdkafka: dict[str, Any] | None = None) -> None:
        from confluent_kafka import Consumer

        self.settings = settings if settings is not None else load_settings()
        self.topic = self.settings.topic_recommendations
        self.skipped = 0
        config = librdkafka_config(self.settings, **{
            "group.id": group_id,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            # The workers' group timings (short by default: the embedded broker's first
            # group join waits about half the session timeout).
            "session.timeout.ms": round(self.settings.broker_session_timeout_s * 1000),
            "heartbeat.interval.ms": round(self.settings.broker_heartbeat_interval_s * 1000),
            **(librdkafka or {}),
        })
        self._consumer = Consumer(config)
        self._assigned_at: float | None = None
        self._consumer.subscribe([self.topic], on_assign=self._on_assign)
        self._closed = False

    def poll(self, timeout_s: float = 1.0, max_messages: int = 500
             ) -> list[RecommendationMessage]:
        """The messages that arrive within ``timeout_s`` (at most ``max_messages``; maybe
        none). Raises :class:`~streams.errors.BrokerUnavailableError` on a fatal client
        error; transient ones (broker briefly away, topic not there yet) are logged and
        retried by the client."""
        decoded = []
        for raw in self._consumer.consume(num_messages=max_messages, timeout=timeout_s):
            error = raw.error()
            if error is not None:
                if error.fatal():
                    raise BrokerUnavailableError(f"recommendations consumer failed: {error}")
                log.warning("recommendations consumer: %s", error)
                continue
            message = self._decode(raw)
            if message is not None:
                decoded.append(message)
        return decoded

    def messages(self, idle_timeout_s: float | None = None) -> Iterator[RecommendationMessage]:
        """Every message, as it arrives; with ``idle_timeout_s``, stop once none has arrived
        for that long since the last message or since this consumer got its partitions
        (e.g. to read what is there now and exit). Joining the group is allowed twice the
        session timeout on top, after which it stops even without partitions."""
        started = last = time.monotonic()
        join_allowance_s = 2 * self.settings.broker_session_timeout_s
        while not self._closed:
            batch = self.poll(timeout_s=0.5 if idle_timeout_s is None
                              else min(0.5, idle_timeout_s))
            if batch:
                last = time.monotonic()
                yield from batch
            elif idle_timeout_s is not None:
                now = time.monotonic()
                if self._assigned_at is None:
                    if now - started >= idle_timeout_s + join_allowance_s:
                        return
                elif now - max(last, self._assigned_at) >= idle_timeout_s:
                    return

    def __iter__(self) -> Iterator[RecommendationMessage]:
        return self.messages()

    def close(self) -> None:
        """Commit the offsets of the messages handed out, leave the group."""
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def __enter__(self) -> RecommendationConsumer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self._assigned_at = time.monotonic()

    def _decode(self, raw: Any) -> RecommendationMessage | None:
        key, value = raw.key(), raw.value()
        where = f"{raw.topic()}[{raw.partition()}]@{raw.offset()}"
        try:
            user_id = key.decode("utf-8") if key else None
        except UnicodeDecodeError:
            user_id = None
        if user_id is None:
            self._skip(where, "no UTF-8 user id key")
            return None
        if value is None:
            return RecommendationMessage(user_id, None, raw.partition(), raw.offset())
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError:
            self._skip(where, "value is not JSON")
            return None
        if not isinstance(document, dict):
            self._skip(where, "value is not a JSON object")
            return None
        return RecommendationMessage(user_id, document, raw.partition(), raw.offset())

    def _skip(self, where: str, why: str) -> None:
        self.skipped += 1
        log.warning("skipped a message not written by streamrec at %s: %s", where, why)
