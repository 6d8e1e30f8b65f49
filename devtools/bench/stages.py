"""The benchmark's "where the time goes": the workers' ``streamrec_stage_seconds`` and
``streamrec_event_loop_lag_seconds`` histograms, differenced over one freshness phase and
turned into quantiles per stage (linear interpolation inside a bucket, as Prometheus'
``histogram_quantile`` does)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from devtools.processes import http_get
from streams.ops.stages import STAGES

STAGE_METRIC = "streamrec_stage_seconds"
LOOP_LAG_METRIC = "streamrec_event_loop_lag_seconds"
LOOP_LAG = "loop_lag"

Buckets = dict[str, dict[float, float]]
"""Per stage (and ``loop_lag``): upper bound -> cumulative count."""


def parse_buckets(text: str) -> Buckets:
    """The stage and loop-lag histograms' cumulative bucket counts in one exposition."""
    out: Buckets = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        if family.name not in (STAGE_METRIC, LOOP_LAG_METRIC):
            continue
        for sample in family.samples:
            if not sample.name.endswith("_bucket"):
                continue
            stage = sample.labels.get("stage", LOOP_LAG)
            bound = float(sample.labels["le"])
            out[stage][bound] = out[stage].get(bound, 0.0) + sample.value
    return dict(out)


def snapshot(ports: Iterable[int]) -> Buckets:
    """The sum of every worker's buckets now."""
    total: Buckets = defaultdict(dict)
    for port in ports:
        status, body = http_get(f"http://127.0.0.1:{port}/metrics")
        if status != 200:
            continue
        for stage, buckets in parse_buckets(body.decode()).items():
            for bound, count in buckets.items():
                total[stage][bound] = total[stage].get(bound, 0.0) + count
    return dict(total)


def difference(after: Buckets, before: Buckets) -> Buckets:
    return {stage: {bound: count - before.get(stage, {}).get(bound, 0.0)
                    for bound, count in buckets.items()}
            for stage, buckets in after.items()}


def quantile(buckets: Mapping[float, float], q: float) -> float | None:
    """The ``q`` quantile from cumulative bucket counts; None without observations.

    >>> quantile({0.001: 50.0, 0.01: 100.0, math.inf: 100.0}, 0.5)
    0.001
    >>> round(quantile({0.001: 50.0, 0.01: 100.0, math.inf: 100.0}, 0.75), 4)
    0.0055
    """
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bucket: its bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def summarise(buckets: Buckets) -> dict[str, dict[str, float | None]]:
    """Per stage: observations, p50 and p99 in ms."""
    out: dict[str, dict[str, float | None]] = {}
    for stage in (*STAGES, LOOP_LAG):
        stage_buckets = buckets.get(stage)
        if not stage_buckets:
            continue
        p50, p99 = quantile(stage_buckets, 0.5), quantile(stage_buckets, 0.99)
        out[stage] = {"count": max(stage_buckets.values()),
                      "p50_ms": None if p50 is None else round(p50 * 1000, 2),
                      "p99_ms": None if p99 is None else round(p99 * 1000, 2)}
    return out


def render_profile(profile: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown table: one row per load level, p50 / p99 ms per stage and end to end."""
    if not profile:
        return []
    stages = [s for s in (*STAGES, LOOP_LAG) if any(s in row["stages"] for row in profile)]
    header = ["load", "offered ev/s", "freshness p50 / p99", *stages]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in profile:
        load = (f"{row['load_fraction']:.0%}" if row.get("load_rate") is None
                else f"{row['load_rate']:,.0f}/s ({row['load_fraction']:.0%})")
        cells = [load, f"{row['offered_events_per_s']:,.0f}",
                 f"{_ms(row.get('freshness_p50_ms'))} / {_ms(row.get('freshness_p99_ms'))}"]
        for stage in stages:
            figures = row["stages"].get(stage)
            cells.append("—" if figures is None else
                         f"{_ms(figures['p50_ms'])} / {_ms(figures['p99_ms'])}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"
