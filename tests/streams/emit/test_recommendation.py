"""build_emission: one schema-valid recommendation per user, triggered by the newest event."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

import schemas
from schemas.errors import SchemaViolationError
from schemas.events import Event, EventType
from streams.emit.recommendation import Emission, build_emission
from streams.scoring.scorer import FALLBACK_REASONS, Scored
from streams.state.bounds import StateBounds
from streams.state.user_state import UserState, apply_events

T0 = 1_795_456_800_000  # 2026-11-23T18:00:00.000Z
GENERATED_MS = T0 + 5_123
SCHEMA = orjson.loads((Path(schemas.__file__).parent / "recommendation.schema.json").read_bytes())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
MODEL = ("gru4rec", "2026.11.1")


def state_of(user_id: str, *events: tuple[str, EventType, int]) -> UserState:
    folded = apply_events(
        None,
        [Event(eid, kind, user_id, f"sku-{eid}", t) for eid, kind, t in events],
        StateBounds(),
    )
    assert folded.state is not None
    return folded.state


def decoded(emission: Emission) -> dict[str, Any]:
    """The emitted message, after checking it against the schema file with jsonschema."""
    message: dict[str, Any] = orjson.loads(emission.value)
    VALIDATOR.validate(message)
    return message


def test_a_model_ranked_message_names_the_model_and_keeps_the_rank_order() -> None:
    state = state_of("u-1", ("e1", EventType.VIEW, T0))
    items = [("sku-9", 0.9), ("sku-3", 0.5), ("sku-7", -1.25)]
    emission = build_emission(
        "u-1", state, Scored(items, None), model=MODEL, generated_at_ms=GENERATED_MS
    )
    message = decoded(emission)
    assert message["user_id"] == "u-1"
    assert message["items"] == [{"item_id": i, "score": s} for i, s in items]
    assert message["model"] == {"name": "gru4rec", "version": "2026.11.1"}
    assert message["fallback"] is None
    assert message["generated_at"] == "2026-11-23T18:00:05.123Z"
    assert (emission.user_id, emission.key, emission.fallback) == ("u-1", b"u-1", None)


def test_the_trigger_is_the_newest_event_by_event_time_not_the_last_to_arrive() -> None:
    state = state_of(
        "u-1",
        ("e-mid", EventType.VIEW, T0 + 1_000),
        ("e-newest", EventType.ADD_TO_CART, T0 + 2_007),
        ("e-arrived-last", EventType.CLICK, T0 + 500),  # out of order, still in the window
    )
    emission = build_emission(
        "u-1", state, Scored([], None), model=MODEL, generated_at_ms=GENERATED_MS
    )
    assert decoded(emission)["trigger"] == {
        "event_id": "e-newest",
        "event_type": "add_to_cart",
        "event_time": "2026-11-23T18:00:02.007Z",
    }
    assert emission.trigger_time_ms == T0 + 2_007


@pytest.mark.parametrize("reason", FALLBACK_REASONS)
@pytest.mark.parametrize("model", [MODEL, None])
def test_a_fallback_is_named_trending_whatever_model_is_loaded(
    reason: str, model: tuple[str, str] | None
) -> None:
    state = state_of("u-2", ("e1", EventType.PURCHASE, T0))
    emission = build_emission(
        "u-2", state, Scored([("sku-1", 3.5)], reason), model=model, generated_at_ms=GENERATED_MS
    )
    message = decoded(emission)
    assert message["model"] == {"name": "trending", "version": "1"}
    assert message["fallback"] == reason
    assert emission.fallback == reason


def test_an_empty_item_list_is_still_a_valid_message() -> None:
    state = state_of("u-3", ("e1", EventType.VIEW, T0))
    emission = build_emission(
        "u-3", state, Scored([], "no_history"), model=None, generated_at_ms=GENERATED_MS
    )
    assert decoded(emission)["items"] == []


def test_the_key_is_the_utf8_user_id() -> None:
    user = "usér-✓"
    state = state_of(user, ("e1", EventType.VIEW, T0))
    emission = build_emission(user, state, Scored([], None), model=MODEL, generated_at_ms=T0)
    assert emission.key == user.encode("utf-8")
    assert decoded(emission)["user_id"] == user


@pytest.mark.parametrize(
    "items",
    [
        [("sku-1", math.nan)],
        [("sku-1", math.inf)],
        [("sku-1", 1.0), ("sku-1", 0.5)],  # the same item twice
        [("", 1.0)],  # not an id
    ],
)
def test_model_output_that_breaks_the_schema_raises_schema_violation(
    items: list[tuple[str, float]],
) -> None:
    """The state agent catches exactly this error to fall back to trending."""
    state = state_of("u-4", ("e1", EventType.VIEW, T0))
    with pytest.raises(SchemaViolationError):
        build_emission("u-4", state, Scored(items, None), model=MODEL, generated_at_ms=T0)
