"""The benchmark's per-stage breakdown: histogram buckets parsed from an exposition,
differenced over a phase, turned into quantiles and a table."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from devtools.bench.stages import (
    LOOP_LAG,
    difference,
    parse_buckets,
    quantile,
    render_profile,
    summarise,
)
from streams.ops.metrics import create_metrics


def exposition(observations: dict[str, list[float]], lags: list[float]) -> str:
    metrics = create_metrics(CollectorRegistry())
    for stage, values in observations.items():
        for value in values:
            metrics.stage_seconds.labels(stage=stage).observe(value)
    for value in lags:
        metrics.event_loop_lag_seconds.observe(value)
    return generate_latest(metrics.registry).decode()


def test_buckets_are_read_per_stage_and_for_the_loop_lag() -> None:
    buckets = parse_buckets(exposition({"scoring": [0.002, 0.003], "state": [0.0004]},
                                       [0.001]))
    assert set(buckets) == {"scoring", "state", LOOP_LAG}
    assert buckets["scoring"][math.inf] == 2 and buckets["scoring"][0.001] == 0
    assert buckets["state"][0.0005] == 1


def test_a_phase_counts_only_what_happened_during_it() -> None:
    before = parse_buckets(exposition({"scoring": [0.002] * 10}, []))
    after = parse_buckets(exposition({"scoring": [0.002] * 10 + [0.2] * 5}, []))
    phase = difference(after, before)
    assert phase["scoring"][math.inf] == 5
    assert 0.1 < quantile(phase["scoring"], 0.5) <= 0.25  # only the slow ones


def test_quantiles_interpolate_within_a_bucket_and_stop_at_the_last_finite_bound() -> None:
    assert quantile({0.01: 0.0, 0.1: 10.0, math.inf: 10.0}, 0.5) == pytest.approx(0.055)
    assert quantile({0.01: 0.0, 0.1: 0.0, math.inf: 10.0}, 0.99) == 0.1
    assert quantile({0.1: 0.0, math.inf: 0.0}, 0.5) is None


def test_the_profile_table_has_a_row_per_load_and_a_column_per_stage() -> None:
    summary = summarise(parse_buckets(exposition({"scoring": [0.002], "produce": [0.02]},
                                                 [0.0002])))
    assert set(summary) == {"scoring", "produce", LOOP_LAG}
    rows = render_profile([{"load_fraction": 0.5, "offered_events_per_s": 812.0,
                            "freshness_p50_ms": 41.0, "freshness_p99_ms": 130.0,
                            "stages": summary}])
    assert rows[0].split(" | ")[:3] == ["| load", "offered ev/s", "freshness p50 / p99"]
    assert rows[2].startswith("| 50% | 812 | 41 / 130 |")
    assert len(rows) == 3
