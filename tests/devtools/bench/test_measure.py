"""Unit tests of the benchmark's arithmetic, parsers, workload and report (no broker)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from devtools import CHECKOUT_ROOT
from devtools.bench.measure import (
    MeasurementError,
    Sample,
    first_output_s,
    quantiles,
    rate_series,
    ratio_guard,
    sustained,
)
from devtools.bench.procstat import parse_stat
from devtools.bench.report import markdown_table, plot, profile_summary, render, table_rows
from devtools.bench.systems import metric_sums
from devtools.bench.workload import EVENT_TYPES, WorkloadConfig, generate
from schemas.events import Event, decode_event
from streams.settings import load_settings

REPO = CHECKOUT_ROOT


def linear(rate: float, seconds: int, start: float = 0.0) -> list[Sample]:
    return [Sample(start + t, rate * t, rate * t, rate * t / 2, 0.25 * t, True)
            for t in range(seconds + 1)]


def test_sustained_rates_of_a_steady_system() -> None:
    window = sustained(linear(500.0, 20), 10_000)
    assert window.events_per_s == pytest.approx(500.0)
    assert window.recs_per_s == pytest.approx(250.0)
    assert window.cpu_s_per_1k_events == pytest.approx(0.5)
    assert window.cores == pytest.approx(0.25)


def test_sustained_runs_from_the_first_input_to_the_last_output() -> None:
    idle = [Sample(t, 0, 0, 0, 0, True) for t in range(3)]  # the first fetch
    # the first stage takes everything in 2 s; the last one finishes 10 s after it started
    busy = [Sample(3 + t, min(10_000.0, 5000.0 * t + 100), 1000.0 * t, 0, 0.5 * t, True)
            for t in range(11)]
    window = sustained(idle + busy, 10_000)
    assert window.start_s == 3
    assert window.events_per_s == pytest.approx(1000.0)
    assert window.cpu_s_per_1k_events == pytest.approx(0.5)
    assert first_output_s(idle + busy) == 4


def test_sustained_waits_for_ready() -> None:
    samples = [Sample(t, 100.0 * t, 100.0 * t, 0, 0, t >= 5) for t in range(101)]
    assert sustained(samples, 10_000).start_s == 5
    assert sustained(samples, 10_000, lo=0.1, hi=0.9).start_s == 10
    samples = [Sample(t, 100.0 * t, 100.0 * t, 0, 0, False) for t in range(101)]
    with pytest.raises(MeasurementError, match="never ready"):
        sustained(samples, 10_000)


def test_sustained_refuses_a_run_that_did_not_finish() -> None:
    with pytest.raises(MeasurementError, match="500/10000"):
        sustained(linear(100.0, 5), 10_000)


def test_rate_series_is_smoothed_over_a_second() -> None:
    samples = [Sample(t / 5, 200.0 * t, 200.0 * t, 0, 0, True) for t in range(26)]  # 1000/s
    series = rate_series(samples, smooth_s=1.0)
    assert series[0][0] == pytest.approx(0.2)
    assert all(rate == pytest.approx(1000.0) for _t, rate in series)


def test_quantiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantiles(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert quantiles([]) == {}
    assert quantiles([7.0]) == {"p50": 7.0, "p95": 7.0, "p99": 7.0}


def test_metric_sums_add_every_label_set() -> None:
    text = "\n".join([
        "# HELP streamrec_events_consumed_total Input messages consumed",
        "# TYPE streamrec_events_consumed_total counter",
        'streamrec_events_consumed_total{event_type="view",topic="t.views"} 600.0',
        'streamrec_events_consumed_total{event_type="click",topic="t.clicks"} 300.0',
        "streamrec_events_consumed_created 1.7e9",
        "streamrec_batch_size_events_sum 850.0",
        "streamrec_batch_size_events_count 3.0",
        "streamrec_recommendations_emitted_total 420.0",
    ])
    sums = metric_sums(text, ("streamrec_events_consumed_total", "streamrec_batch_size_events_sum",
                              "streamrec_recommendations_emitted_total"))
    assert sums == {"streamrec_events_consumed_total": 900.0,
                    "streamrec_batch_size_events_sum": 850.0,
                    "streamrec_recommendations_emitted_total": 420.0}


def test_parse_stat_survives_odd_command_names() -> None:
    fields = ["S", "41"] + ["0"] * 9 + ["250", "50", "30", "20"] + ["0"] * 30
    ppid, own, waited = parse_stat("1234 (python (worker) 1) " + " ".join(fields))
    assert ppid == 41
    assert own == pytest.approx(300 / 100)  # CLK_TCK is 100 on Linux
    assert waited == pytest.approx(50 / 100)


def test_workload_is_seeded_and_shaped_like_the_config() -> None:
    config = WorkloadConfig(events=20_000, users=5_000, items=1_000, seed=3)
    one, two = generate(config, freshness_pool=100), generate(config, freshness_pool=100)
    assert one.events == two.events and one.freshness_pool == two.freshness_pool
    assert len(one.events) == 20_000 and len(one.freshness_pool) == 100
    assert len({e["event_id"] for e in one.events + one.freshness_pool}) == 20_100
    summary = one.summary()
    for share, event_type in zip(config.mix, EVENT_TYPES, strict=True):
        assert summary["mix"][event_type] == pytest.approx(share, abs=0.015)
    counts: dict[str, int] = {}
    for event in one.events:
        counts[event["item_id"]] = counts.get(event["item_id"], 0) + 1
    top = sorted(counts.values(), reverse=True)
    assert top[0] > 20 * top[len(top) // 2]  # power-law popularity, not uniform
    assert generate(WorkloadConfig(events=100, seed=4)).events != generate(
        WorkloadConfig(events=100, seed=5)).events


def test_every_generated_event_is_valid_for_streamrec() -> None:
    settings = load_settings()
    for event in generate(WorkloadConfig(events=2_000, users=500, items=300)).events:
        stamped = {**event, "timestamp": 1_800_000_000_000}
        decoded = decode_event(orjson.dumps(stamped), settings.topic_for(event["event_type"]),
                               now_ms=1_800_000_000_000)
        assert isinstance(decoded, Event), decoded


def test_workload_rejects_a_bad_mix() -> None:
    with pytest.raises(ValueError, match="mix"):
        WorkloadConfig(mix=(0.5, 0.5, 0.0))  # type: ignore[arg-type]


def test_profile_summary_of_collapsed_stacks(tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    raw.write_text("\n".join([
        f"main ({REPO}/streams/cli.py:10);process ({REPO}/streams/state/agent.py:80);"
        "run (/v/lib/python3.11/site-packages/onnxruntime/x.py:5) 30",
        f"main ({REPO}/streams/cli.py:10);process ({REPO}/streams/state/agent.py:81) 10",
        "run_forever (asyncio/base_events.py:1);select (selectors.py:468) 60",
    ]))
    top = profile_summary(raw, REPO)
    assert top["samples"] == 40 and top["idle_share"] == pytest.approx(0.6)
    assert top["self"][0] == ("run (onnxruntime/x.py:5)", 0.75)
    assert top["inclusive"] == [("process (streams/state/agent.py)", 1.0)]


def fake_results() -> dict:
    run = {"events_per_s": 1000.0, "recs_per_s": 900.0, "cpu_s_per_1k_events": 0.5,
           "cores": 0.5, "peak_rss_mib": 300.0, "freshness_p50_ms": 80.0,
           "freshness_p95_ms": 200.0, "freshness_p99_ms": 300.0,
           "timeline": [(0.2, 900.0), (0.4, 1000.0)], "freshness_ms_values": [50.0, 80.0, 300.0]}
    summary = {name: {k: v for k, v in run.items() if not isinstance(v, list)}
               for name in ("ceiling", "baseline", "streamrec")}
    return {
        "machine": {"cpu": "Test CPU", "cores": 2, "cores_available": 2, "ram_gib": 8.0,
                    "python": "3.11", "faust": "0.15.3", "broker": "Tansu", "git": "abc",
                    "load_average_at_start": [1.0, 1.0, 1.0]},
        "workload": {"events": 1000, "distinct_users": 10, "user_population": 100,
                     "distinct_items": 5, "catalogue": 10, "mix": {}},
        "config": {"partitions": 4},
        "model": {"name": "m"},
        "runs": {"ceiling": [run], "baseline": [run], "streamrec": [run]},
        "runs_ok": {"ceiling": 1, "baseline": 1, "streamrec": 1},
        "summary": summary,
        "ratios": {"streamrec/baseline": 1.0, "streamrec/baseline per run": [1.0]},
        "scaling": {1: {"events_per_s": 1000.0}, 2: {"events_per_s": 1500.0}},
        "failures": [],
    }


def test_report_renders_a_table_and_a_plot(tmp_path: Path) -> None:
    results = fake_results()
    rows = table_rows(results["summary"], results["runs_ok"])
    assert [row[0] for row in rows] == ["system", "ceiling", "baseline", "streamrec"]
    assert rows[1][6] == "n/a (no output)"  # the ceiling emits nothing
    assert "| streamrec | 1,000 |" in markdown_table(rows)
    text = render(results)
    assert "streamrec/baseline: 1.00x" in text and "2 -> 1,500 events/s" in text
    plot(tmp_path / "bench.png", json.loads(json.dumps(results)))
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"


def test_the_ratio_guard_passes_at_and_above_the_threshold() -> None:
    assert ratio_guard({"streamrec/baseline": 2.0}, 2.0) is None
    assert ratio_guard({"streamrec/baseline": 3.16}, 2.0) is None


def test_the_ratio_guard_fails_below_the_threshold_or_without_a_ratio() -> None:
    assert ratio_guard({"streamrec/baseline": 1.86}, 2.0) == (
        "streamrec/baseline = 1.86x, below the 2x guard")
    assert ratio_guard({"streamrec/baseline": float("nan")}, 2.0) is not None
    assert "both systems" in (ratio_guard({}, 2.0) or "")
