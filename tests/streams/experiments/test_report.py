"""Aggregating the attribution log into an experiment report: exact counts under
duplicates, the definitions, the control, the JSON contract, empty cases."""

from __future__ import annotations

import random

import orjson
import pytest

from streams.experiments.report import aggregate, choose_control, render_text
from streams.experiments.stats import two_proportion_p_value, wilson_interval
from tests.streams.experiments.support import (
    EXPERIMENT,
    VARIANT_KEYS,
    attributed,
    scenario,
    served,
)


def test_counts_are_exact_under_duplicates() -> None:
    report = aggregate(scenario(), EXPERIMENT)
    a, b = report.variants["A"], report.variants["B"]
    assert (a.recommendations, a.users, a.clicks, a.carts, a.purchases) == (4, 3, 3, 1, 2)
    assert (a.clicked_recommendations, a.converted_users, a.revenue) == (2, 2, 20.0)
    assert (b.recommendations, b.users, b.clicks, b.carts, b.purchases) == (3, 3, 1, 0, 1)
    assert (b.clicked_recommendations, b.converted_users, b.revenue) == (1, 1, 25.0)
    assert a.ctr == 2 / 4 and a.conversion == 2 / 3 and a.revenue_per_user == 20.0 / 3
    assert b.ctr == 1 / 3 and b.conversion == 1 / 3
    assert report.unmatched_attributions == 0


def test_the_order_of_the_log_does_not_matter() -> None:
    records = scenario()
    expected = aggregate(records, EXPERIMENT).to_json_dict()
    for seed in range(5):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        assert aggregate(shuffled, EXPERIMENT).to_json_dict() == expected


def test_json_has_exactly_the_contract_keys() -> None:
    data = orjson.loads(orjson.dumps(aggregate(scenario(), EXPERIMENT).to_json_dict()))
    assert set(data) == {"experiment", "variants", "comparisons"}
    assert data["experiment"] == EXPERIMENT
    assert list(data["variants"]) == ["A", "B"]
    for variant in data["variants"].values():
        assert set(variant) == VARIANT_KEYS
        assert len(variant["ctr_ci95"]) == 2 and len(variant["conversion_ci95"]) == 2
    assert [(c["variant"], c["control"], c["metric"]) for c in data["comparisons"]] == [
        ("B", "A", "ctr"), ("B", "A", "conversion")]
    for comparison in data["comparisons"]:
        assert set(comparison) == {"variant", "control", "metric", "p_value"}


def test_intervals_and_p_values_come_from_the_counts() -> None:
    data = aggregate(scenario(), EXPERIMENT).to_json_dict()
    assert data["variants"]["A"]["ctr_ci95"] == list(wilson_interval(2, 4) or ())
    assert data["variants"]["B"]["conversion_ci95"] == list(wilson_interval(1, 3) or ())
    ctr, conversion = data["comparisons"]
    assert ctr["p_value"] == two_proportion_p_value(2, 4, 1, 3)
    assert conversion["p_value"] == two_proportion_p_value(2, 3, 1, 3)


def test_attributions_count_for_the_variant_that_served_them() -> None:
    records = [served("r1", "u1", "B"),
               attributed("r1", "u1", "A", "i1", "click"),  # a confused variant field
               attributed("r-gone", "u2", "A", "i1", "click")]  # no served record
    report = aggregate(records, EXPERIMENT)
    assert report.variants["B"].clicks == 1
    assert "A" not in report.variants
    assert report.unmatched_attributions == 1
    assert "1 attributions name a recommendation" in render_text(report)


def test_control_is_a_then_alphabetical_then_as_told() -> None:
    assert choose_control(["C", "B", "A"]) == "A"
    assert choose_control(["C", "B"]) == "B"
    assert choose_control(["C", "B"], "C") == "C"
    records = [served("r1", "u1", "C"), served("r2", "u2", "B")]
    report = aggregate(records, EXPERIMENT)
    assert report.control == "B" and list(report.variants) == ["B", "C"]
    told = aggregate(records, EXPERIMENT, control="C")
    assert told.control == "C" and list(told.variants) == ["C", "B"]
    assert {c.control for c in told.comparisons} == {"C"}


def test_a_control_absent_from_the_log_has_zero_counts_and_no_p_values() -> None:
    report = aggregate([served("r1", "u1", "B")], EXPERIMENT, control="A")
    data = report.to_json_dict()
    assert data["variants"]["A"] == {
        "users": 0, "recommendations": 0, "clicks": 0, "carts": 0, "purchases": 0,
        "revenue": 0.0, "revenue_per_user": None, "ctr": None, "ctr_ci95": None,
        "conversion": None, "conversion_ci95": None}
    assert [c["p_value"] for c in data["comparisons"]] == [None, None]
    render_text(report)  # does not fail on the missing figures


def test_nothing_served_gives_an_empty_report() -> None:
    report = aggregate([served("r1", "u1", "A", experiment="other")], EXPERIMENT)
    assert report.to_json_dict() == {"experiment": EXPERIMENT, "variants": {},
                                     "comparisons": []}
    assert "no recommendations served" in render_text(report)


def test_no_clicks_anywhere_gives_undefined_p_values_not_errors() -> None:
    report = aggregate([served("r1", "u1", "A"), served("r2", "u2", "B")], EXPERIMENT)
    data = report.to_json_dict()
    assert data["variants"]["A"]["ctr"] == 0.0
    assert data["variants"]["A"]["ctr_ci95"][0] == 0.0
    assert [c["p_value"] for c in data["comparisons"]] == [None, None]
    assert "undefined" in render_text(report)


@pytest.mark.parametrize("variants", [["A", "B", "C"], ["A"]])
def test_every_non_control_variant_is_compared_on_both_metrics(variants: list[str]) -> None:
    records = [served(f"r{v}", f"u{v}", v) for v in variants]
    report = aggregate(records, EXPERIMENT)
    assert [(c.variant, c.metric) for c in report.comparisons] == [
        (v, m) for v in variants[1:] for m in ("ctr", "conversion")]


def test_text_output_is_a_table() -> None:
    text = render_text(aggregate(scenario(), EXPERIMENT))
    lines = text.splitlines()
    assert lines[0] == f"experiment {EXPERIMENT} (control A)"
    assert lines[2].split()[:3] == ["variant", "users", "recs"]
    row_a = next(line for line in lines if line.startswith("A "))
    assert row_a.split()[:6] == ["A", "3", "4", "3", "1", "2"]
    assert "50.00% [" in row_a
    assert "B ctr" in text.replace("  ", " ")
