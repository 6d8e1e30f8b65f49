"""Decode business rules: the Python side of ``rule.schema.json``.

Rules come from two places, in the same JSON form: the ``STREAMREC_RULES`` setting (a JSON
array, :func:`parse_rule_list`, checked at start-up) and the log-compacted ``rules`` topic
(one rule per record keyed by ``rule_id``, :func:`decode_rule`). A topic record is a rule
(one of the six kinds below), a :class:`RuleRemoved` (a tombstone: null value, the key names
the rule) or a :class:`~schemas.events.Rejection` with a stable reason, bound for the
dead-letter topic. :func:`decode_rule` never raises on input.

>>> raw = b'{"rule_id": "no-ladders", "kind": "exclude_categories", "categories": ["Ladders"]}'
>>> decode_rule(b"no-ladders", raw)
ExcludeCategories(rule_id='no-ladders', enabled=True, note=None, categories=('Ladders',))
>>> decode_rule(b"no-ladders", None)
RuleRemoved(rule_id='no-ladders')
>>> decode_rule(b"other", raw).reason
<RejectReason.KEY_MISMATCH: 'key_mismatch'>
>>> decode_rule(b"b", b'{"rule_id": "b", "kind": "boost", "brands": ["X"], "factor": 50}').reason
<RejectReason.SCHEMA_VIOLATION: 'schema_violation'>
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar, Final, TypeAlias

import fastjsonschema
import orjson

from schemas.contract import SCHEMA_VERSION, field_name, load_schema, short
from schemas.errors import SchemasError
from schemas.events import Rejection
from schemas.keyed import keyed_json
from schemas.reasons import RejectReason

DEFAULT_MAX_RULE_BYTES: Final = 1_048_576
"""Largest rule record accepted (an exclusion list of 10,000 ids fits); Kafka's default
message size limit is about the same."""

RULE_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""What ``rule_id`` may hold (the schema says the same; a test checks they agree)."""

_SCHEMA: Final = load_schema("rule")
# Two passes, so that the reason does not depend on fastjsonschema's keyword order (it checks
# allOf before required and properties): the fields every kind shares first, then the kind's
# own requirements (its ``then`` branch), whose failures are named from the schema itself.
# use_default=False: validation must never write into the message it checks.
_validate_fields = fastjsonschema.compile(
    {key: value for key, value in _SCHEMA.items() if key != "allOf"}, use_default=False)
_validate_rule = fastjsonschema.compile(_SCHEMA, use_default=False)
_KIND_RULES: Final[dict[str, dict[str, Any]]] = {
    branch["if"]["properties"]["kind"]["const"]: branch["then"] for branch in _SCHEMA["allOf"]}


class RuleKind(StrEnum):
    """The rule kinds (``kind`` in the schema)."""

    EXCLUDE_ITEMS = "exclude_items"
    EXCLUDE_CATEGORIES = "exclude_categories"
    BOOST = "boost"
    CATEGORY_CAP = "category_cap"
    PRICE_RANGE = "price_range"
    EXCLUDE_PURCHASED = "exclude_purchased"


class InvalidRuleError(SchemasError, ValueError):
    """A rule in the ``STREAMREC_RULES`` setting breaks ``schemas/rule.schema.json`` (or two
    rules share a rule_id). The message names the rule by position and rule_id and says what
    is wrong: fix the setting (a JSON array of rule objects) and restart."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleBase:
    """What every rule has. ``kind`` is fixed per class."""

    kind: ClassVar[RuleKind]
    rule_id: str
    enabled: bool = True
    note: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The canonical JSON form (absent optionals omitted); :func:`decode_rule` reads it."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "rule_id": self.rule_id,
                               "kind": str(self.kind), "enabled": self.enabled}
        for f in fields(self):
            if f.name in out:
                continue
            value = getattr(self, f.name)
            if value is None or value == ():
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ExcludeItems(RuleBase):
    """Never recommend ``items``: to everyone, or only to ``user_id``."""

    kind: ClassVar[RuleKind] = RuleKind.EXCLUDE_ITEMS
    items: tuple[str, ...]
    user_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExcludeCategories(RuleBase):
    """Never recommend an item with one of ``categories`` at any level of its path."""

    kind: ClassVar[RuleKind] = RuleKind.EXCLUDE_CATEGORIES
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Boost(RuleBase):
    """Multiply the score of matching items by ``factor``. An item matches when it meets
    every criterion given: one of ``categories`` at any level of its path, and its brand one
    of ``brands``."""

    kind: ClassVar[RuleKind] = RuleKind.BOOST
    factor: float
    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CategoryCap(RuleBase):
    """At most ``max_items`` items of one root category per recommendation; ``categories``
    names the root categories it applies to (empty: every one)."""

    kind: ClassVar[RuleKind] = RuleKind.CATEGORY_CAP
    max_items: int
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceRange(RuleBase):
    """Only recommend items priced within [``min_price``, ``max_price``] (either may be open);
    items without a price pass when ``keep_unpriced``."""

    kind: ClassVar[RuleKind] = RuleKind.PRICE_RANGE
    min_price: float | None = None
    max_price: float | None = None
    keep_unpriced: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ExcludePurchased(RuleBase):
    """Never recommend what the user bought in the last ``days`` days."""

    kind: ClassVar[RuleKind] = RuleKind.EXCLUDE_PURCHASED
    days: float


Rule: TypeAlias = (ExcludeItems | ExcludeCategories | Boost | CategoryCap | PriceRange
                   | ExcludePurchased)


@dataclass(frozen=True, slots=True)
class RuleRemoved:
    """A tombstone: the topic no longer holds this rule."""

    rule_id: str


def decode_rule(
    key: bytes | None, value: bytes | None, max_bytes: int = DEFAULT_MAX_RULE_BYTES
) -> Rule | RuleRemoved | Rejection:
    """One record of the rules topic. Never raises on input data."""
    keyed = keyed_json(key, value, max_bytes, "rule_id", RULE_ID_PATTERN.fullmatch)
    if isinstance(keyed, Rejection):
        return keyed
    rule_key, data = keyed.key, keyed.data
    if data is None:
        return RuleRemoved(str(rule_key))
    rule = rule_from_json(data)
    if isinstance(rule, Rejection):
        return rule
    if rule_key != rule.rule_id:
        return Rejection(RejectReason.KEY_MISMATCH,
                         f"record key {short(rule_key)} is not the rule_id "
                         f"{short(rule.rule_id)}")
    return rule


def rule_from_json(data: Any) -> Rule | Rejection:
    """One rule object (already parsed JSON), validated. Never raises on input data."""
    if not isinstance(data, dict):
        return Rejection(RejectReason.NOT_AN_OBJECT, "a rule is a JSON object")
    try:
        _validate_fields(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        return _schema_rejection(data, exc)
    try:
        _validate_rule(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        return _kind_rejection(data, exc)
    common = {"rule_id": data["rule_id"], "enabled": data.get("enabled", True),
              "note": data.get("note")}
    kind = RuleKind(data["kind"])
    if kind is RuleKind.EXCLUDE_ITEMS:
        return ExcludeItems(**common, items=tuple(data["items"]), user_id=data.get("user_id"))
    if kind is RuleKind.EXCLUDE_CATEGORIES:
        return ExcludeCategories(**common, categories=tuple(data["categories"]))
    if kind is RuleKind.BOOST:
        return Boost(**common, factor=float(data["factor"]),
                     categories=tuple(data.get("categories", ())),
                     brands=tuple(data.get("brands", ())))
    if kind is RuleKind.CATEGORY_CAP:
        return CategoryCap(**common, max_items=data["max_items"],
                           categories=tuple(data.get("categories", ())))
    if kind is RuleKind.PRICE_RANGE:
        low, high = data.get("min_price"), data.get("max_price")
        if low is not None and high is not None and low > high:
            return Rejection(RejectReason.SCHEMA_VIOLATION,
                             f"min_price {low} is above max_price {high}")
        return PriceRange(**common, min_price=None if low is None else float(low),
                          max_price=None if high is None else float(high),
                          keep_unpriced=data.get("keep_unpriced", True))
    return ExcludePurchased(**common, days=float(data["days"]))


def encode_rule(rule: Rule) -> bytes:
    """A rule as its record value (what a producer writes to the rules topic)."""
    return orjson.dumps(rule.to_json_dict())


def parse_rule_list(text: str) -> tuple[Rule, ...]:
    """The ``STREAMREC_RULES`` setting: a JSON array of rule objects with distinct rule ids.

    >>> parse_rule_list('[{"rule_id": "fresh", "kind": "exclude_purchased", "days": 30}]')
    (ExcludePurchased(rule_id='fresh', enabled=True, note=None, days=30.0),)
    >>> parse_rule_list('[{"rule_id": "x", "kind": "boost", "brands": ["Y"]}]')
    Traceback (most recent call last):
    ...
    schemas.rules.InvalidRuleError: rule 0 ('x'): missing_field: a boost rule needs: factor
    """
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRuleError(f"not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise InvalidRuleError("expected a JSON array of rule objects, e.g. "
                               '[{"rule_id": "fresh", "kind": "exclude_purchased", '
                               '"days": 30}]')
    rules: list[Rule] = []
    seen: set[str] = set()
    for position, entry in enumerate(data):
        rule = rule_from_json(entry)
        if isinstance(rule, Rejection):
            name = entry.get("rule_id") if isinstance(entry, dict) else None
            raise InvalidRuleError(
                f"rule {position} ({short(name, 40)}): {rule.reason.value}: {rule.detail}"[:600])
        if rule.rule_id in seen:
            raise InvalidRuleError(f"rule {position}: rule_id {rule.rule_id!r} appears twice")
        seen.add(rule.rule_id)
        rules.append(rule)
    return tuple(rules)


_ID_FIELDS: Final = ("user_id", "items[")


def _schema_rejection(data: dict[str, Any], exc: fastjsonschema.JsonSchemaValueException
                      ) -> Rejection:
    where = field_name(exc)
    if exc.rule == "required" and where == "":
        missing = sorted(set(exc.rule_definition) - data.keys())
        if missing:
            return Rejection(RejectReason.MISSING_FIELD,
                             f"missing required field(s): {', '.join(missing)}")
    if exc.rule == "type":
        return Rejection(RejectReason.WRONG_TYPE, f"{where}: {exc.message}"[:500])
    if where == "user_id" and not isinstance(data.get("user_id"), str | None):
        return Rejection(RejectReason.WRONG_TYPE, "user_id must be a string or null")
    if where == "rule_id":
        return Rejection(RejectReason.INVALID_ID,
                         "rule_id must be 1-128 letters, digits, '.', '_', ':' or '-', "
                         "starting with a letter or digit")
    if where.startswith(_ID_FIELDS):
        return Rejection(RejectReason.INVALID_ID,
                         f"{where} must be 1-256 characters without control characters")
    return Rejection(RejectReason.SCHEMA_VIOLATION, f"{where or 'rule'}: {exc.message}"[:500])


def _kind_rejection(data: dict[str, Any], exc: fastjsonschema.JsonSchemaValueException
                    ) -> Rejection:
    """What the kind's own branch of the schema says is wrong (the shared fields are fine)."""
    kind = data["kind"]
    then = _KIND_RULES[kind]
    missing = [name for name in then.get("required", ()) if name not in data]
    if missing:
        return Rejection(RejectReason.MISSING_FIELD,
                         f"a {kind} rule needs: {', '.join(missing)}")
    allowed = set(then["propertyNames"]["enum"])
    unknown = sorted(set(data) - allowed)
    if unknown:
        return Rejection(RejectReason.SCHEMA_VIOLATION,
                         f"{', '.join(map(short, unknown))} not allowed in a {kind} rule "
                         f"(allowed: {', '.join(sorted(allowed))})"[:500])
    if "anyOf" in then:
        options = [" ".join(option["required"]) for option in then["anyOf"]]
        return Rejection(RejectReason.MISSING_FIELD,
                         f"a {kind} rule needs at least one of: {', '.join(options)}")
    return Rejection(RejectReason.SCHEMA_VIOLATION, f"{kind} rule: {exc.message}"[:500])
