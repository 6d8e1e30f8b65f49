"""The guard rail: a variant is rolled back only when it fails significantly more often than
the control, and only once both have enough recommendations."""

from __future__ import annotations

import pytest

from schemas.control import TRENDING_VERSION, Experiment, Variant
from streams.scoring.guard import GuardRail, worse_p_value

EXPERIMENT = Experiment(
    "spring", "00" * 16,
    (Variant("A", "m-aaaaaaaaaaaa", 0.5), Variant("B", "m-bbbbbbbbbbbb", 0.25),
     Variant("C", TRENDING_VERSION, 0.25)),
    None, "running", 1, 1)


def test_equal_rates_are_not_significant() -> None:
    assert worse_p_value(10, 500, 10, 500) == pytest.approx(0.5)


def test_a_better_variant_is_never_worse() -> None:
    assert worse_p_value(1, 500, 40, 500) > 0.999


def test_no_users_or_no_failures_anywhere_is_undefined() -> None:
    assert worse_p_value(0, 0, 3, 100) == 1.0
    assert worse_p_value(0, 100, 0, 100) == 1.0


def test_a_failing_variant_is_condemned_once_both_sides_have_the_minimum() -> None:
    guard = GuardRail(max_p_value=0.001, min_users=200)
    guard.observe("spring", "A", 199, 1)
    guard.observe("spring", "B", 300, 120)
    assert guard.judge(EXPERIMENT) is None  # the control has too few users yet
    guard.observe("spring", "A", 1, 0)
    verdict = guard.judge(EXPERIMENT)
    assert verdict is not None and verdict.variant == "B"
    assert verdict.p_value < 0.001
    assert "B failed 120/300 vs control A 1/200" in verdict.reason("A")


def test_noise_is_not_condemned() -> None:
    guard = GuardRail(max_p_value=0.001, min_users=200)
    guard.observe("spring", "A", 1000, 20)
    guard.observe("spring", "B", 1000, 30)  # worse, but within chance at p < 0.001
    assert guard.judge(EXPERIMENT) is None


def test_the_worst_of_two_failing_variants_is_named() -> None:
    guard = GuardRail(max_p_value=0.01, min_users=100)
    guard.observe("spring", "A", 500, 5)
    guard.observe("spring", "B", 500, 60)
    guard.observe("spring", "C", 500, 200)
    verdict = guard.judge(EXPERIMENT)
    assert verdict is not None and verdict.variant == "C"


def test_forget_starts_the_counts_afresh() -> None:
    guard = GuardRail(max_p_value=0.01, min_users=100)
    guard.observe("spring", "A", 500, 5)
    guard.observe("spring", "B", 500, 200)
    guard.forget("spring")
    assert guard.judge(EXPERIMENT) is None
    assert guard.counts == {}


def test_an_experiment_is_condemned_once() -> None:
    guard = GuardRail(max_p_value=0.01, min_users=100)
    guard.observe("spring", "A", 500, 5)
    guard.observe("spring", "B", 500, 200)
    assert guard.judge(EXPERIMENT) is not None
    guard.observe("spring", "B", 500, 200)  # a batch scored under the old plan meanwhile
    assert guard.judge(EXPERIMENT) is None
