"""Stage 5: one recommendation message per touched user per micro-batch, newest trigger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from schemas.recommendations import build_recommendation, encode_recommendation
from streams.scoring.scorer import Scored
from streams.state.user_state import UserState

TRENDING_MODEL = ("trending", "1")


@dataclass(frozen=True, slots=True)
class Emission:
    """An encoded recommendation ready to send, keyed by user id."""

    user_id: str
    key: bytes
    value: bytes
    trigger_time_ms: int
    fallback: str | None
    recommendation_id: str = ""
    model: tuple[str, str] = TRENDING_MODEL
    """(name, version) of what ranked the items, as in the message."""


def build_emission(
    user_id: str,
    state: UserState,
    scored: Scored,
    *,
    model: tuple[str, str] | None,
    generated_at_ms: int,
    explain: bool = True,
    recommendation_id: str | None = None,
    experiment: Mapping[str, str] | None = None,
) -> Emission:
    """The schema-valid recommendation message for ``user_id`` (coalesced: one per batch).

    The trigger is the user's newest event by event time, i.e. the newest event the
    recommendation reflects.
    """
    if model and scored.fallback is None:
        name, version = model
    else:
        name, version = scored.source or TRENDING_MODEL
    trigger = state.newest_event
    message = build_recommendation(
        user_id=user_id,
        items=([(item, score, reason.to_json())
                for (item, score), reason in zip(scored.items, scored.reasons, strict=True)]
               if explain and scored.reasons else scored.items),
        model_name=name,
        model_version=version,
        trigger=trigger,
        generated_at_ms=generated_at_ms,
        fallback=scored.fallback,
        recommendation_id=recommendation_id,
        experiment=experiment,
    )
    return Emission(
        user_id=user_id,
        key=user_id.encode("utf-8"),
        value=encode_recommendation(message),
        trigger_time_ms=trigger.event_time_ms,
        fallback=scored.fallback,
        recommendation_id=message["recommendation_id"],
        model=(name, version),
    )
