"""The one root of every error streamrec raises on purpose.

Each subclass's docstring says what went wrong and what the operator should do about it.
The ``models`` and ``schemas`` packages have their own roots (``ModelsError``,
``SchemasError``) so they stay importable without the stream; the worker treats all three
as operator errors.
"""

from __future__ import annotations


class StreamrecError(Exception):
    """Root of every error the stream processor raises deliberately."""


class SettingsError(StreamrecError):
    """A ``STREAMREC_*`` setting is missing or invalid: fix the environment variable named
    in the message and restart."""


class BrokerUnavailableError(StreamrecError):
    """The Kafka broker at ``STREAMREC_BROKER_URL`` could not be reached: check the URL, that
    the broker is running, and the TLS/SASL settings."""


class TopicSetupError(StreamrecError):
    """Creating or checking a topic failed: the message names the topic and the broker's
    answer; fix the broker's ACLs/config or the topic settings and retry (the command is
    idempotent)."""


class ModelLoadError(StreamrecError):
    """The model directory could not be served: check ``STREAMREC_MODEL_DIR`` points at a
    directory written by ``streamrec train`` (model.onnx, vocab.json, meta.json)."""


class InvalidEventError(StreamrecError, ValueError):
    """An event handed to :class:`streams.client.EventProducer` would be dead-lettered by the
    worker (it breaks ``schemas/event.schema.json``, is too large, or its timestamp is out of
    the accepted range), so nothing was sent. ``reason`` is the stable
    :class:`schemas.reasons.RejectReason` code the worker would have used and ``detail`` names
    the field: fix the code that builds the event (the schema is the contract)."""

    def __init__(self, message: str, *, reason: str, detail: str,
                 event_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail
        self.event_id = event_id


class DeliveryError(StreamrecError):
    """The broker did not acknowledge messages a streamrec client sent (the message says how
    many and the first error): check that the broker at ``STREAMREC_BROKER_URL`` is reachable
    and that the topics exist (``streamrec topics create``), then send them again. Resending
    events is safe: the worker ignores an ``event_id`` it has recently applied for that user
    (the last ``STREAMREC_DEDUP_WINDOW`` ids)."""
