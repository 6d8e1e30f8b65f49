"""Model-lifecycle control records: the Python side of ``control.schema.json``.

The control topic (``STREAMREC_TOPIC_CONTROL``, log-compacted, one partition) holds two kinds
of record, each under a fixed key so compaction keeps the newest one:

* a :class:`Promotion` under :data:`PROMOTION_KEY`: the registry version every worker serves,
  with the versions promoted before it (what ``streamrec models rollback`` goes back to);
* an :class:`Experiment` under :func:`experiment_key` (``experiment/<name>``): users split
  between variants by a salted hash of their id, and optionally a shadow variant.

:func:`decode_control` turns a record into one of those, a :class:`ControlRemoved` (a
tombstone) or a :class:`~schemas.events.Rejection` with a stable reason; it never raises on
input. :func:`encode_control` is its inverse and refuses a record the schema would reject.

>>> promotion = Promotion("sessattn-0123456789ab", (), 1_700_000_000_000, "promote")
>>> key, value = encode_control(promotion)
>>> key
b'promotion'
>>> decode_control(key, value) == promotion
True
>>> decode_control(b"experiment/spring", None)
ControlRemoved(key='experiment/spring')
>>> decode_control(b"experiment/other", value).reason
<RejectReason.KEY_MISMATCH: 'key_mismatch'>

Assignment is deterministic: the same salt and user id always give the same variant.

>>> test = Experiment("spring", "00112233445566778899aabbccddeeff",
...                   (Variant("A", TRENDING_VERSION, 0.5), Variant("B", "m-0123456789ab", 0.5)),
...                   None, "running", 1, 1)
>>> test.control.name, test.variant_for("user-1") == test.variant_for("user-1")
('A', True)
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeAlias

import fastjsonschema
import orjson

from schemas.contract import SCHEMA_VERSION, field_name, load_schema, short
from schemas.errors import SchemasError
from schemas.events import Rejection
from schemas.keyed import keyed_json
from schemas.reasons import RejectReason

TRENDING_VERSION: Final = "trending"
"""The reserved version meaning "no model": the trending baseline serves."""

PROMOTION_KEY: Final = "promotion"
"""The record key of the one promotion on the control topic."""

EXPERIMENT_KEY_PREFIX: Final = "experiment/"

MAX_HISTORY: Final = 20
"""Most earlier promotions a :class:`Promotion` remembers."""

SHARE_TOLERANCE: Final = 1e-6
"""How far from 1 the variants' shares may add up to."""

DEFAULT_MAX_CONTROL_BYTES: Final = 65_536
"""Largest control record accepted (an experiment with 26 variants is about 4 KiB)."""

LABEL_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""What experiment names, variant names and versions may hold (the schema says the same; a
test checks they agree)."""

_KEY_PATTERN: Final = re.compile(
    rf"{PROMOTION_KEY}|{EXPERIMENT_KEY_PREFIX}[A-Za-z0-9][A-Za-z0-9._:-]{{0,127}}")

_SCHEMA: Final = load_schema("control")
# use_default=False: validation must never write into the message it checks.
_validate_control = fastjsonschema.compile(_SCHEMA, use_default=False)


class ControlKind(StrEnum):
    """The record kinds (``kind`` in the schema)."""

    PROMOTION = "promotion"
    EXPERIMENT = "experiment"


class ExperimentStatus(StrEnum):
    """An experiment's ``status``: only a running one splits users."""

    RUNNING = "running"
    STOPPED = "stopped"
    ROLLED_BACK = "rolled_back"


class InvalidControlRecordError(SchemasError, ValueError):
    """A control record built in code breaks ``schemas/control.schema.json`` (the message
    says which field and why), so it was not encoded: fix the code or the command-line values
    that built it."""


def is_valid_label(value: object) -> bool:
    """True for a valid experiment name, variant name or version.

    >>> is_valid_label("sessattn-0123456789ab"), is_valid_label("-x"), is_valid_label("a/b")
    (True, False, False)
    """
    return type(value) is str and LABEL_PATTERN.fullmatch(value) is not None


def experiment_key(name: str) -> str:
    """The record key of experiment ``name``.

    >>> experiment_key("spring")
    'experiment/spring'
    """
    return f"{EXPERIMENT_KEY_PREFIX}{name}"


@dataclass(frozen=True, slots=True)
class Promotion:
    """The version every worker serves, and the ones promoted before it."""

    version: str
    """A registry version, or :data:`TRENDING_VERSION` (no model)."""
    history: tuple[str, ...]
    """Previously promoted versions, most recent first, at most :data:`MAX_HISTORY`."""
    promoted_at_ms: int
    reason: str
    """``promote``, ``rollback`` or free text (e.g. a guard rail's explanation)."""

    @property
    def key(self) -> str:
        return PROMOTION_KEY


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of an experiment."""

    name: str
    """A label (``A``, ``B``, ``control``...), distinct within the experiment."""
    version: str
    """A registry version, or :data:`TRENDING_VERSION` (no model)."""
    share: float
    """The fraction of users it gets; 0 for a shadow."""


@dataclass(frozen=True, slots=True)
class Experiment:
    """An A/B test: users split between ``variants`` (the first is the control) by a salted
    hash of their id; ``shadow`` (share 0) is scored for them too but never sent."""

    name: str
    salt: str
    """Random hex mixed into the hash, fresh per experiment."""
    variants: tuple[Variant, ...]
    shadow: Variant | None
    status: str
    """``running`` | ``stopped`` | ``rolled_back`` (:class:`ExperimentStatus`)."""
    started_at_ms: int
    updated_at_ms: int
    reason: str | None = None
    """Why it stopped or was rolled back (None while running)."""

    @property
    def key(self) -> str:
        return experiment_key(self.name)

    @property
    def control(self) -> Variant:
        """The first variant, the one the others are compared with."""
        return self.variants[0]

    @property
    def is_running(self) -> bool:
        return self.status == ExperimentStatus.RUNNING

    def variant_for(self, user_id: str) -> Variant:
        """The variant ``user_id`` belongs to: its :func:`assignment_point` placed on the
        cumulative shares. Deterministic; independent between experiments (salts differ)."""
        point = assignment_point(self.salt, user_id)
        cumulative = 0.0
        for variant in self.variants:
            cumulative += variant.share
            if point < cumulative:
                return variant
        return self.variants[-1]  # shares add up to 1 - 1e-6 at worst

    def versions(self) -> frozenset[str]:
        """Every version the experiment serves or shadows (``trending`` included)."""
        arms = (*self.variants, *((self.shadow,) if self.shadow else ()))
        return frozenset(arm.version for arm in arms)


ControlRecord: TypeAlias = Promotion | Experiment


@dataclass(frozen=True, slots=True)
class ControlRemoved:
    """A tombstone (null value): the record under ``key`` is gone."""

    key: str

    @property
    def experiment_name(self) -> str | None:
        """The removed experiment's name; None when the promotion was removed."""
        if self.key.startswith(EXPERIMENT_KEY_PREFIX):
            return self.key[len(EXPERIMENT_KEY_PREFIX):]
        return None


def assignment_point(salt: str, user_id: str) -> float:
    """Where ``user_id`` falls in [0, 1) for ``salt``: the first 64 bits of
    ``sha256(salt + "\\0" + user_id)`` over 2**64.

    >>> 0.0 <= assignment_point("ab" * 8, "user-1") < 1.0
    True
    """
    text = f"{salt}\0{user_id}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") / 2**64


def to_json_dict(record: ControlRecord) -> dict[str, Any]:
    """The canonical JSON form of a record; :func:`decode_control` reads it."""
    if isinstance(record, Promotion):
        return {"schema_version": SCHEMA_VERSION, "kind": str(ControlKind.PROMOTION),
                "version": record.version, "history": list(record.history),
                "promoted_at_ms": record.promoted_at_ms, "reason": record.reason}
    return {"schema_version": SCHEMA_VERSION, "kind": str(ControlKind.EXPERIMENT),
            "name": record.name, "salt": record.salt,
            "variants": [_variant_json(v) for v in record.variants],
            "shadow": None if record.shadow is None else _variant_json(record.shadow),
            "status": str(record.status), "started_at_ms": record.started_at_ms,
            "updated_at_ms": record.updated_at_ms, "reason": record.reason}


def encode_control(record: ControlRecord) -> tuple[bytes, bytes]:
    """``(key, value)`` of a record for the control topic, checked against the schema first.

    Raises :class:`InvalidControlRecordError` when the record breaks it."""
    data = to_json_dict(record)
    checked = control_from_json(data)
    if isinstance(checked, Rejection):
        raise InvalidControlRecordError(
            f"{record.key}: {checked.reason.value}: {checked.detail}"[:1000])
    return record.key.encode("utf-8"), orjson.dumps(data)


def decode_control(key: bytes | None, value: bytes | None,
                   max_bytes: int = DEFAULT_MAX_CONTROL_BYTES
                   ) -> Promotion | Experiment | ControlRemoved | Rejection:
    """One record of the control topic. Never raises on input data."""
    keyed = keyed_json(key, value, max_bytes, "record key (promotion or experiment/<name>)",
                       _KEY_PATTERN.fullmatch)
    if isinstance(keyed, Rejection):
        return keyed
    if keyed.data is None:
        return ControlRemoved(str(keyed.key))
    record = control_from_json(keyed.data)
    if isinstance(record, Rejection):
        return record
    if keyed.key != record.key:
        kind = "promotion" if isinstance(record, Promotion) else "experiment"
        return Rejection(RejectReason.KEY_MISMATCH,
                         f"record key {short(_text(key))} is not {short(record.key)}, the key "
                         f"of this {kind}")
    return record


def control_from_json(data: Any) -> ControlRecord | Rejection:
    """One control object (already parsed JSON), validated. Never raises on input data."""
    if not isinstance(data, dict):
        return Rejection(RejectReason.NOT_AN_OBJECT, "a control record is a JSON object")
    try:
        _validate_control(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        return _schema_rejection(data, exc)
    if data["kind"] == ControlKind.PROMOTION:
        return Promotion(version=data["version"], history=tuple(data["history"]),
                         promoted_at_ms=data["promoted_at_ms"], reason=data["reason"])
    variants = tuple(_variant(v) for v in data["variants"])
    shadow = None if data.get("shadow") is None else _variant(data["shadow"])
    names = [v.name for v in (*variants, *((shadow,) if shadow else ()))]
    if len(set(names)) != len(names):
        return Rejection(RejectReason.SCHEMA_VIOLATION,
                         f"variant names must be distinct (shadow included): {names}"[:500])
    total = math.fsum(v.share for v in variants)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        return Rejection(RejectReason.SCHEMA_VIOLATION,
                         f"variant shares add up to {total:.6g}, not 1")
    return Experiment(name=data["name"], salt=data["salt"], variants=variants, shadow=shadow,
                      status=str(data["status"]), started_at_ms=data["started_at_ms"],
                      updated_at_ms=data["updated_at_ms"], reason=data.get("reason"))


def _variant(data: dict[str, Any]) -> Variant:
    return Variant(name=data["name"], version=data["version"], share=float(data["share"]))


def _variant_json(variant: Variant) -> dict[str, Any]:
    return {"name": variant.name, "version": variant.version, "share": variant.share}


def _text(key: bytes | None) -> str | None:
    return None if key is None else bytes(key).decode("utf-8", "replace")


def _schema_rejection(data: dict[str, Any], exc: fastjsonschema.JsonSchemaValueException
                      ) -> Rejection:
    where = field_name(exc)
    if exc.rule == "required":
        required = exc.rule_definition if isinstance(exc.rule_definition, list) else []
        checked = exc.value if isinstance(exc.value, dict) else data
        missing = ", ".join(sorted(set(required) - checked.keys()))
        prefix = f"{where}: " if where else ""
        return Rejection(RejectReason.MISSING_FIELD,
                         f"{prefix}missing required field(s): {missing}"[:500])
    if exc.rule == "type":
        return Rejection(RejectReason.WRONG_TYPE, f"{where}: {exc.message}"[:500])
    if exc.rule == "propertyNames":
        return Rejection(RejectReason.SCHEMA_VIOLATION,
                         f"a {short(data.get('kind'))} record takes only its own fields: "
                         f"{exc.message}"[:500])
    return Rejection(RejectReason.SCHEMA_VIOLATION,
                     f"{where or 'control record'}: {exc.message}"[:500])
