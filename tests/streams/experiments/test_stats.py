"""Rates, Wilson intervals and the two-proportion z-test against published and independent
figures."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.experiments.stats import rate, two_proportion_p_value, wilson_interval

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
# method 3 (Wilson score interval without continuity correction).
NEWCOMBE = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("successes", "trials", "low", "high"), NEWCOMBE)
def test_wilson_matches_the_published_values(successes: int, trials: int, low: float,
                                             high: float) -> None:
    interval = wilson_interval(successes, trials)
    assert interval is not None
    assert interval == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_wilson_is_symmetric_and_bounded_at_the_edges() -> None:
    low, high = wilson_interval(5, 10) or (0, 0)
    assert low == pytest.approx(1 - high)
    assert wilson_interval(10, 10) == (pytest.approx(1 - 0.2775, abs=1e-4), 1.0)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))


def test_no_trials_means_no_rate_and_no_interval() -> None:
    assert rate(0, 0) is None
    assert wilson_interval(0, 0) is None


@pytest.mark.parametrize(("successes", "trials"), [(-1, 3), (4, 3), (1, -1)])
def test_impossible_counts_raise(successes: int, trials: int) -> None:
    with pytest.raises(ValueError, match="successes <= trials"):
        wilson_interval(successes, trials)


@given(st.integers(0, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))
       .filter(lambda t: t[1] > 0))
def test_wilson_contains_the_rate_inside_zero_one(counts: tuple[int, int]) -> None:
    successes, trials = counts
    low, high = wilson_interval(successes, trials) or (math.nan, math.nan)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_z_test_known_value() -> None:
    # 50/100 vs 65/100: pooled 0.575, z = 0.15 / sqrt(0.575 * 0.425 * 0.02) = 2.1456
    assert two_proportion_p_value(50, 100, 65, 100) == pytest.approx(0.03190, abs=5e-5)


def test_z_test_is_symmetric() -> None:
    forward = two_proportion_p_value(30, 200, 45, 180)
    assert forward == pytest.approx(two_proportion_p_value(45, 180, 30, 200))
    flipped = two_proportion_p_value(200 - 30, 200, 180 - 45, 180)  # failures, not successes
    assert forward == pytest.approx(flipped)


def test_equal_rates_give_p_one() -> None:
    assert two_proportion_p_value(10, 100, 20, 200) == pytest.approx(1.0)


@given(st.integers(1, 5000), st.integers(1, 5000), st.data())
def test_z_test_agrees_with_an_independent_normal_tail(n_a: int, n_b: int,
                                                        data: st.DataObject) -> None:
    x_a = data.draw(st.integers(0, n_a))
    x_b = data.draw(st.integers(0, n_b))
    p_value = two_proportion_p_value(x_a, n_a, x_b, n_b)
    pooled = (x_a + x_b) / (n_a + n_b)
    if pooled in (0.0, 1.0):
        assert p_value is None
        return
    z = (x_b / n_b - x_a / n_a) / math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    expected = 2 * (1 - NormalDist().cdf(abs(z)))
    assert p_value is not None and 0.0 <= p_value <= 1.0
    assert p_value == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("counts", [(0, 0, 3, 10), (3, 10, 0, 0), (0, 10, 0, 10),
                                    (10, 10, 5, 5)])
def test_undefined_tests_give_none(counts: tuple[int, int, int, int]) -> None:
    assert two_proportion_p_value(*counts) is None
