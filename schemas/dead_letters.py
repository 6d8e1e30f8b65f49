"""Encode and read dead letters: the Python side of ``dead_letter.schema.json``. A dead
letter carries the rejected record's bytes, where it came from and the reason code."""

from __future__ import annotations

import base64
from typing import Any, Final

import orjson

from schemas.contract import SCHEMA_VERSION, check_message, compile_schema, is_valid_id
from schemas.errors import SchemaViolationError
from schemas.events import Rejection
from schemas.timestamps import format_rfc3339_ms

_validate_dead_letter = compile_schema("dead_letter")


DEFAULT_MAX_ORIGINAL_BYTES: Final = 512 * 1024
"""Original key/value bytes kept in a dead letter; keeps it under Kafka's default 1 MiB."""


def encode_dead_letter(
    rejection: Rejection,
    *,
    raw_key: bytes | None,
    raw_value: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    received_at_ms: int,
    max_original_bytes: int = DEFAULT_MAX_ORIGINAL_BYTES,
) -> bytes:
    """A dead-letter message (UTF-8 JSON, validated) for a record that was rejected.

    For a failure after decoding, pass ``Rejection(RejectReason.PROCESSING_ERROR, detail,
    event.event_id)``. Key and value longer than ``max_original_bytes`` are cut to that many
    bytes and ``truncated`` is set. A negative ``timestamp_ms`` (Kafka's -1, "no timestamp")
    is written as null; ``detail`` is cut to 1024 characters. Raises
    :class:`~schemas.errors.SchemaViolationError` if the result would still break
    dead_letter.schema.json (e.g. a negative offset).
    """
    key_b64, key_cut = _b64(raw_key, max_original_bytes)
    value_b64, value_cut = _b64(raw_value, max_original_bytes)
    event_id = rejection.event_id
    message = {
        "schema_version": SCHEMA_VERSION,
        "reason": str(rejection.reason),
        # "replace": a detail quoting an exception may hold lone surrogates JSON cannot carry.
        "detail": rejection.detail[:1024].encode("utf-8", "replace").decode("utf-8"),
        "source": {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp_ms": None if timestamp_ms is None or timestamp_ms < 0 else timestamp_ms,
        },
        "original_key_b64": key_b64,
        "original_value_b64": value_b64,
        "original_key_size": None if raw_key is None else len(raw_key),
        "original_value_size": None if raw_value is None else len(raw_value),
        "truncated": key_cut or value_cut,
        "event_id": event_id if is_valid_id(event_id) else None,
        "received_at": format_rfc3339_ms(received_at_ms),
    }
    check_message("dead_letter", _validate_dead_letter, message)
    return orjson.dumps(message)


def decode_dead_letter(raw: bytes) -> dict[str, Any]:
    """Parse and validate a dead-letter message. The originals are
    ``base64.b64decode(message["original_value_b64"])`` (when not null).

    Raises :class:`~schemas.errors.SchemaViolationError` if ``raw`` is not one.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SchemaViolationError(
            f"dead letter is not JSON: {exc}", schema="dead_letter", rule="json"
        ) from exc
    check_message("dead_letter", _validate_dead_letter, data)
    message: dict[str, Any] = data
    return message


def _b64(raw: bytes | None, cap: int) -> tuple[str | None, bool]:
    if raw is None:
        return None, False
    kept = bytes(raw[:cap])
    return base64.b64encode(kept).decode("ascii"), len(kept) < len(raw)

