"""Encode and read the attribution log: the Python side of ``feedback.schema.json``.

Two kinds of record share the ``streamrec.feedback`` topic, keyed by ``user_id``: a
:class:`Served` record for every recommendation sent while an experiment runs, and an
:class:`Attribution` for every click, add_to_cart or purchase credited to a recommendation.
The log is at-least-once (a worker that crashes after producing but before committing
writes the same records again): readers deduplicate, served records by
``recommendation_id`` and attributions by :attr:`Attribution.attribution_id`.

>>> served = Served("r-1", "u-1", "exp-1", "A", "sessattn", "v3", 20, 1795456800123)
>>> key, value = encode_feedback(served)
>>> key, decode_feedback(value) == served
(b'u-1', True)
>>> decode_feedback(b'{"kind": "served"}')  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
schemas.errors.SchemaViolationError: feedback message breaks ... at top level: data must contain ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import orjson

from schemas.contract import SCHEMA_VERSION, check_message, compile_schema
from schemas.errors import SchemaViolationError
from schemas.timestamps import format_rfc3339_ms, parse_rfc3339_ms

_validate_feedback = compile_schema("feedback")

SERVED: Final = "served"
ATTRIBUTION: Final = "attribution"
ATTRIBUTED_EVENT_TYPES: Final = ("click", "add_to_cart", "purchase")
"""The event types an attribution may credit (the schema's ``event_type`` enum)."""
MATCHED_BY: Final = ("recommendation_id", "window")
"""How an attribution found its recommendation (the schema's ``matched_by`` enum)."""


@dataclass(frozen=True, slots=True)
class Served:
    """A recommendation sent to a user under an experiment (``experiment``/``variant`` are
    None outside one)."""

    recommendation_id: str
    user_id: str
    experiment: str | None
    variant: str | None
    model_name: str
    model_version: str
    items: int  # how many items it listed
    generated_at_ms: int  # when streamrec produced it, ms since the epoch

    @property
    def time_ms(self) -> int:
        """When it happened: ``generated_at_ms``."""
        return self.generated_at_ms


@dataclass(frozen=True, slots=True)
class Attribution:
    """An event credited to the recommendation that showed its item."""

    recommendation_id: str
    user_id: str
    experiment: str | None
    variant: str | None
    model_name: str
    model_version: str
    item_id: str
    position: int  # 1-based rank of the item in the recommendation
    event_type: str  # "click" | "add_to_cart" | "purchase"
    event_id: str
    event_time_ms: int
    delay_ms: int  # event time - the recommendation's generated time (>= 0)
    revenue: float | None  # purchases: price x quantity (quantity 1 when absent); else None
    matched_by: str  # "recommendation_id" | "window"

    @property
    def attribution_id(self) -> str:
        """What makes an attribution unique: one recommendation, one item, one event type
        (a second click on the same item of the same recommendation is not a new one).

        >>> Attribution("r-1", "u", None, None, "m", "1", "sku-9", 1, "click", "e", 0, 0,
        ...             None, "window").attribution_id
        'r-1:sku-9:click'
        """
        return f"{self.recommendation_id}:{self.item_id}:{self.event_type}"

    @property
    def time_ms(self) -> int:
        """When it happened: ``event_time_ms``."""
        return self.event_time_ms


Feedback: TypeAlias = Served | Attribution


def feedback_to_json_dict(record: Feedback) -> dict[str, Any]:
    """The record's JSON object (not yet validated: :func:`encode_feedback` does that)."""
    common: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": SERVED if isinstance(record, Served) else ATTRIBUTION,
        "recommendation_id": record.recommendation_id,
        "user_id": record.user_id,
        "experiment": record.experiment,
        "variant": record.variant,
        "model_name": record.model_name,
        "model_version": record.model_version,
    }
    if isinstance(record, Served):
        return {**common, "items": record.items,
                "generated_at": format_rfc3339_ms(record.generated_at_ms)}
    return {
        **common,
        "item_id": record.item_id,
        "position": record.position,
        "event_type": record.event_type,
        "event_id": record.event_id,
        "event_time": format_rfc3339_ms(record.event_time_ms),
        "delay_ms": record.delay_ms,
        "revenue": record.revenue,
        "matched_by": record.matched_by,
    }


def encode_feedback(record: Feedback) -> tuple[bytes, bytes]:
    """``(key, value)`` of a feedback record: the user id (UTF-8) and the validated JSON.

    Beyond the schema, revenue must be finite. Raises
    :class:`~schemas.errors.SchemaViolationError` when the record breaks the contract (or a
    timestamp is outside years 1-9999): fix the code that built it.
    """
    if isinstance(record, Attribution) and record.revenue is not None and not (
            isinstance(record.revenue, int | float) and math.isfinite(record.revenue)):
        raise SchemaViolationError(
            f"revenue is {record.revenue!r}; it must be a finite number or None",
            schema="feedback", path="revenue", rule="finite")
    try:
        message = feedback_to_json_dict(record)
    except ValueError as exc:  # InvalidTimestampError: a time outside years 1-9999
        raise SchemaViolationError(f"feedback record has an impossible time: {exc}",
                                   schema="feedback", rule="timestamp") from exc
    check_message("feedback", _validate_feedback, message)
    return record.user_id.encode("utf-8"), orjson.dumps(message)


def decode_feedback(value: bytes | None) -> Feedback:
    """Parse and validate one record value of the feedback topic.

    Raises :class:`~schemas.errors.SchemaViolationError` when it is not one (absent, not
    JSON, or breaking the schema); readers skip and count such records.
    """
    if not value:
        raise SchemaViolationError("feedback record value is absent or empty",
                                   schema="feedback", rule="empty")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise SchemaViolationError(f"feedback record is not JSON: {exc}", schema="feedback",
                                   rule="json") from exc
    check_message("feedback", _validate_feedback, data)
    return feedback_from_json_dict(data)


def feedback_from_json_dict(data: dict[str, Any]) -> Feedback:
    """The record of a JSON object that passed the schema."""
    common = (data["recommendation_id"], data["user_id"], data["experiment"], data["variant"],
              data["model_name"], data["model_version"])
    if data["kind"] == SERVED:
        return Served(*common, data["items"], parse_rfc3339_ms(data["generated_at"]))
    revenue = data["revenue"]
    return Attribution(
        *common, data["item_id"], data["position"], data["event_type"], data["event_id"],
        parse_rfc3339_ms(data["event_time"]), data["delay_ms"],
        None if revenue is None else float(revenue), data["matched_by"],
    )
