"""StateBounds and TrendingConfig refuse impossible settings."""

from __future__ import annotations

from typing import Any

import pytest

from streams.errors import StreamrecError
from streams.state.bounds import (
    DEFAULT_TRENDING_WEIGHTS,
    EVENT_TYPES,
    ITEM_EVENT_TYPES,
    InvalidBoundsError,
    StateBounds,
    TrendingConfig,
)


def test_defaults() -> None:
    bounds = StateBounds()
    assert (bounds.max_sequence_len, bounds.max_purchased, bounds.dedup_window) == (50, 200, 100)
    assert bounds.max_searches == 5
    assert (bounds.session_gap_s, bounds.reorder_window_s, bounds.user_ttl_s) == (
        1800, 300, 30 * 86_400
    )
    config = TrendingConfig()
    assert (config.half_life_s, config.capacity) == (3600, 1000)
    assert dict(config.weights) == {"view": 1, "click": 2, "add_to_cart": 4, "purchase": 8}
    assert config.weight("purchase") == 8


@pytest.mark.parametrize(
    "changes",
    [
        {"max_sequence_len": 0},
        {"max_sequence_len": 2.0},
        {"max_purchased": -1},
        {"max_searches": -1},
        {"max_searches": 1.0},
        {"dedup_window": 0},
        {"session_gap_s": 0},
        {"reorder_window_s": -1},
        {"user_ttl_s": float("nan")},
        {"user_ttl_s": True},
    ],
)
def test_state_bounds_refuse(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidBoundsError) as caught:
        StateBounds(**changes)
    assert next(iter(changes)) in str(caught.value)
    assert isinstance(caught.value, StreamrecError)


@pytest.mark.parametrize(
    "changes",
    [
        {"half_life_s": 0},
        {"capacity": 0},
        {"weights": {"view": 1.0}},
        {"weights": {**DEFAULT_TRENDING_WEIGHTS, "like": 1.0}},
        {"weights": {**DEFAULT_TRENDING_WEIGHTS, "view": 0.0}},
        # a search names no item: it has no trending weight, not even 0
        {"weights": {**DEFAULT_TRENDING_WEIGHTS, "search": 1.0}},
        {"weights": {**DEFAULT_TRENDING_WEIGHTS, "search": 0.0}},
    ],
)
def test_trending_config_refuses(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidBoundsError):
        TrendingConfig(**changes)


def test_settings_style_values_are_accepted() -> None:
    # The settings object gives seconds as floats and allows keeping no purchases.
    StateBounds(session_gap_s=1800.0, reorder_window_s=0.0, user_ttl_s=2.5e6, max_purchased=0,
                max_searches=0)


def test_event_types_and_trending_weights_agree() -> None:
    # Stored records hold a type's index: search was appended last.
    assert EVENT_TYPES == ("view", "click", "add_to_cart", "purchase", "search")
    assert ITEM_EVENT_TYPES == ("view", "click", "add_to_cart", "purchase")
    assert set(DEFAULT_TRENDING_WEIGHTS) == set(ITEM_EVENT_TYPES)
