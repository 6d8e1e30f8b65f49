"""Build and encode recommendation messages: the Python side of
``recommendation.schema.json``. Every message streamrec emits goes through
:func:`encode_recommendation`, which validates it first."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

import orjson

from schemas.contract import (
    CONTROL_CHAR,
    SCHEMA_VERSION,
    check_message,
    compile_schema,
    load_schema,
    schema_fingerprint,
)
from schemas.errors import SchemaViolationError
from schemas.events import Event
from schemas.reasons import FallbackReason
from schemas.timestamps import format_rfc3339_ms

_validate_recommendation = compile_schema("recommendation")
_TRIGGER_TYPES: Final = frozenset(
    load_schema("recommendation")["properties"]["trigger"]["properties"]["event_type"]["enum"])
_REASON_KINDS: Final = frozenset(
    load_schema("recommendation")["definitions"]["reason"]["properties"]["kind"]["enum"])
_REASON_NEEDS: Final = {"similar": "item_id", "search": "query", "boosted": "rule"}
_REASON_FIELDS: Final = {"item_id": 256, "query": 1024, "rule": 128}


class TriggerRef(Protocol):
    """Anything naming an event by id, type and time, e.g. ``UserState.newest_event``."""

    @property
    def event_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def event_time_ms(self) -> int: ...


def build_recommendation(
    user_id: str,
    items: Sequence[tuple[str, float] | tuple[str, float, Mapping[str, Any] | None]],
    model_name: str,
    model_version: str,
    trigger: Event | TriggerRef,
    generated_at_ms: int,
    fallback: FallbackReason | str | None,
    *,
    recommendation_id: str | None = None,
    experiment: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A recommendation message (not yet validated: :func:`encode_recommendation` does that).

    ``items`` are ``(item_id, score)`` or ``(item_id, score, reason)`` in rank order, best
    first (``reason``: the ``{"kind": ...}`` object, or None); ``trigger`` is the user's
    newest event by event time (an :class:`Event` or a :class:`TriggerRef`); ``fallback`` is
    ``None`` when the model ranked the items; ``recommendation_id`` defaults to
    :func:`recommendation_id_for` the user, trigger and generation time; ``experiment`` is
    ``{"name": ..., "variant": ...}`` or None.
    """
    trigger_ms = trigger.timestamp_ms if isinstance(trigger, Event) else trigger.event_time_ms
    return {
        "schema_version": SCHEMA_VERSION,
        "user_id": user_id,
        "items": [_item(*item) for item in items],
        "model": {"name": model_name, "version": model_version},
        "trigger": {
            "event_id": trigger.event_id,
            "event_type": str(trigger.event_type),
            "event_time": format_rfc3339_ms(trigger_ms),
        },
        "generated_at": format_rfc3339_ms(generated_at_ms),
        "fallback": None if fallback is None else str(fallback),
        "recommendation_id": recommendation_id or recommendation_id_for(
            user_id, trigger.event_id, str(generated_at_ms)),
        "experiment": None if experiment is None else dict(experiment),
    }


def recommendation_id_for(user_id: str, trigger_event_id: str, discriminator: str) -> str:
    """A recommendation id: 32 hex digits of SHA-256 over the user, the trigger event and a
    discriminator, so rebuilding the same recommendation from the same state gives the same
    id (what lets attribution and its log stay exact across a worker restart).

    >>> recommendation_id_for("u1", "e9", "3")
    '949beb56fe3b84fecd1d4eb9d1899ee8'
    """
    digest = hashlib.sha256(
        f"{user_id}\0{trigger_event_id}\0{discriminator}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def _item(item_id: str, score: float, reason: Mapping[str, Any] | None = None
          ) -> dict[str, Any]:
    if reason is None:
        return {"item_id": item_id, "score": float(score)}
    return {"item_id": item_id, "score": float(score), "reason": dict(reason)}


_UTC_TIME = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"\.[0-9]{3}Z"
)
_RECOMMENDATION_KEYS: Final = frozenset(
    {"schema_version", "user_id", "items", "model", "trigger", "generated_at", "fallback",
     "recommendation_id", "experiment"}
)
_EXPERIMENT_KEYS: Final = frozenset({"name", "variant"})
_ITEM_KEYS: Final = frozenset({"item_id", "score"})
_ITEM_KEYS_WITH_REASON: Final = frozenset({"item_id", "score", "reason"})
_MODEL_KEYS: Final = frozenset({"name", "version"})
_TRIGGER_KEYS: Final = frozenset({"event_id", "event_type", "event_time"})
_FALLBACKS: Final = frozenset({None, *(r.value for r in FallbackReason)})


def _fast_recommendation_ok(d: Any) -> bool:
    """True only if ``d`` certainly satisfies recommendation.schema.json; the shape
    :func:`build_recommendation` makes, checked in about a tenth of the compiled validator's
    time (the emission hot path). False means "ask the compiled schema", never "invalid".
    Written against the schema whose fingerprint is ``_RECOMMENDATION_FAST_PATH_SHA256``."""
    if type(d) is not dict or d.keys() != _RECOMMENDATION_KEYS:
        return False
    user_id, items, model, trigger = d["user_id"], d["items"], d["model"], d["trigger"]
    if (
        d["schema_version"] != SCHEMA_VERSION
        or type(user_id) is not str
        or not 0 < len(user_id) <= 256
        or type(items) is not list
        or len(items) > 1000
        or type(model) is not dict
        or model.keys() != _MODEL_KEYS
        or type(trigger) is not dict
        or trigger.keys() != _TRIGGER_KEYS
        or type(d["generated_at"]) is not str
        or _UTC_TIME.fullmatch(d["generated_at"]) is None
        or (d["fallback"] is not None and type(d["fallback"]) is not str)
        or d["fallback"] not in _FALLBACKS
    ):
        return False
    name, version = model["name"], model["version"]
    event_id, event_type, event_time = (
        trigger["event_id"], trigger["event_type"], trigger["event_time"])
    if (
        type(name) is not str
        or type(version) is not str
        or not 0 < len(name) <= 128
        or not 0 < len(version) <= 128
        or type(event_id) is not str
        or not 0 < len(event_id) <= 256
        or type(event_type) is not str
        or event_type not in _TRIGGER_TYPES
        or type(event_time) is not str
        or _UTC_TIME.fullmatch(event_time) is None
    ):
        return False
    recommendation_id, experiment = d["recommendation_id"], d["experiment"]
    if type(recommendation_id) is not str or not 0 < len(recommendation_id) <= 256:
        return False
    texts = [user_id, name, version, event_id, recommendation_id]
    if experiment is not None:
        if type(experiment) is not dict or experiment.keys() != _EXPERIMENT_KEYS:
            return False
        for label in experiment.values():
            if type(label) is not str or not 0 < len(label) <= 128:
                return False
            texts.append(label)
    for item in items:
        if type(item) is not dict:
            return False
        keys = item.keys()
        if keys == _ITEM_KEYS_WITH_REASON:
            if not _fast_reason_ok(item["reason"], texts):
                return False
        elif keys != _ITEM_KEYS:
            return False
        item_id, score = item["item_id"], item["score"]
        if (type(item_id) is not str or not 0 < len(item_id) <= 256
                or (type(score) is not float and type(score) is not int)):
            return False
        texts.append(item_id)
    return CONTROL_CHAR.search("".join(texts)) is None


def _fast_reason_ok(reason: Any, texts: list[str]) -> bool:
    """The reason object's shape (see ``definitions.reason``); ids and rule names join
    ``texts`` for the control-character check (a query may hold any character)."""
    if type(reason) is not dict:
        return False
    kind = reason.get("kind")
    if type(kind) is not str or kind not in _REASON_KINDS:
        return False
    needed = _REASON_NEEDS.get(kind)
    if needed is not None and needed not in reason:
        return False
    for key, value in reason.items():
        if key == "kind":
            continue
        limit = _REASON_FIELDS.get(key)
        if limit is None or type(value) is not str or not 0 < len(value) <= limit:
            return False
        if key != "query":
            texts.append(value)
    return True


_RECOMMENDATION_FAST_PATH_SHA256: Final = (
    "b31d7a099a0f2d350785e5975c8566f9c95b470fd269ffad07e2326aaf28f7fc"
)
RECOMMENDATION_FAST_PATH_ENABLED: Final = (
    schema_fingerprint(load_schema("recommendation")) == _RECOMMENDATION_FAST_PATH_SHA256
)
"""False when recommendation.schema.json has changed since ``_fast_recommendation_ok`` was
written against it: every message then goes through the compiled schema (correct, slower)."""


def encode_recommendation(message: Mapping[str, Any]) -> bytes:
    """Validate ``message`` against recommendation.schema.json and serialise it (UTF-8 JSON).

    Beyond the schema: scores must be finite and item ids unique. Raises
    :class:`~schemas.errors.SchemaViolationError` otherwise.
    """
    data = message if isinstance(message, dict) else dict(message)
    if not (RECOMMENDATION_FAST_PATH_ENABLED and _fast_recommendation_ok(data)):
        check_message("recommendation", _validate_recommendation, data)
    seen: set[str] = set()
    for index, item in enumerate(data["items"]):
        if not math.isfinite(item["score"]):
            raise SchemaViolationError(
                f"items[{index}].score is {item['score']}; scores must be finite",
                schema="recommendation", path=f"items[{index}].score", rule="finite",
            )
        if item["item_id"] in seen:
            raise SchemaViolationError(
                f"items[{index}].item_id {item['item_id']!r} appears twice",
                schema="recommendation", path=f"items[{index}].item_id", rule="unique",
            )
        seen.add(item["item_id"])
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError as exc:  # e.g. a float subclass the schema let through
        raise SchemaViolationError(
            f"recommendation is not serialisable as JSON: {exc}", schema="recommendation"
        ) from exc


# ---------------------------------------------------------------------------------------------
