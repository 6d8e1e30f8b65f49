"""A candidate item on its way into a recommendation: its score and why it is there.

``reason`` is what the recommendation message carries per item (``items[].reason``): a
machine-readable explanation a UI can show and an engineer can debug with. Kinds:

- ``sequence``: the model ranked it from the user's recent items;
- ``similar``: its text resembles a recent item of the user (``item_id`` names which);
- ``search``: it matches the user's recent search (``query`` says which);
- ``trending``: popular right now (cold start, or no model);
- ``new_item``: recently added to the catalogue and nobody has interacted with it yet;
- ``boosted``: a merchandising rule raised it (``rule`` names which).

>>> Candidate("sku-1", 0.8, Reason.similar("sku-9")).reason.to_json()
{'kind': 'similar', 'item_id': 'sku-9'}
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class ReasonKind(StrEnum):
    SEQUENCE = "sequence"
    SIMILAR = "similar"
    SEARCH = "search"
    TRENDING = "trending"
    NEW_ITEM = "new_item"
    BOOSTED = "boosted"


@dataclass(frozen=True, slots=True)
class Reason:
    kind: ReasonKind
    item_id: str | None = None
    """``similar``: the user's recent item it resembles."""
    query: str | None = None
    """``search``: the query it matches."""
    rule: str | None = None
    """``boosted``: the rule that raised it."""

    @classmethod
    def sequence(cls) -> Reason:
        return _SEQUENCE

    @classmethod
    def similar(cls, item_id: str) -> Reason:
        return cls(ReasonKind.SIMILAR, item_id=item_id)

    @classmethod
    def search(cls, query: str) -> Reason:
        return cls(ReasonKind.SEARCH, query=query)

    @classmethod
    def trending(cls) -> Reason:
        return _TRENDING

    @classmethod
    def new_item(cls) -> Reason:
        return _NEW_ITEM

    @classmethod
    def boosted(cls, rule: str) -> Reason:
        return cls(ReasonKind.BOOSTED, rule=rule)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": str(self.kind)}
        for key in ("item_id", "query", "rule"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


_SEQUENCE = Reason(ReasonKind.SEQUENCE)
_TRENDING = Reason(ReasonKind.TRENDING)
_NEW_ITEM = Reason(ReasonKind.NEW_ITEM)
"""Reasons without details are immutable and shared (one per kind, not one per item)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    item_id: str
    score: float
    """Higher is better; comparable within one user's list only."""
    reason: Reason

    def rescored(self, score: float, reason: Reason | None = None) -> Candidate:
        return replace(self, score=score, reason=reason or self.reason)
