"""``streamrec bench --quick`` end to end: both systems run and the report adds up.

Runs the real command (its own embedded broker, a model trained on a small slice, baseline
and streamrec side by side on one backlog) and checks what it measured and wrote: every run
succeeded, every figure is present and consistent with the others, the ratio is the ratio
of the two medians, the plot is a PNG, and the regression guard (``--min-ratio``) fails
with exit 3 when given a ratio no machine reaches. It asserts no speed: performance is
measured by the benchmark (``make bench-guard``, ``streamrec bench``) and written down in
docs/performance.md, never asserted in a test on shared, noisy machines (a 2x assertion
here failed CI at 1.86x on a loaded runner while the same code measured 2.89x on a quiet
one). The ratio is printed for the CI log. About a minute.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

BENCH_TIMEOUT_S = 240
UNREACHABLE_RATIO = 1000  # the guard's failure path, whatever the machine's speed


@pytest.mark.integration
@pytest.mark.timeout(BENCH_TIMEOUT_S + 60)
def test_quick_bench_runs_both_systems_and_reports_their_ratio(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "streams.cli", "bench", "--quick",
               "--systems", "baseline,streamrec", "--out", str(out),
               # a 2,000-item catalogue: embedded in seconds before each streamrec instance
               "--items", "2000",
               # half the quick backlog and a shorter freshness phase: the suite's time
               "--events", "3000", "--freshness-seconds", "2",
               # one more streamrec phase at 20 % load, with the per-stage breakdown
               "--stage-loads", "0.2",
               "--min-ratio", str(UNREACHABLE_RATIO)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=BENCH_TIMEOUT_S)
    finally:
        if process.poll() is None:  # timed out or interrupted: let the bench clean up
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
    assert process.returncode == 3, output[-6000:]  # 3: the guard failed, nothing else did
    results = json.loads((out / "results.json").read_text())
    report = (out / "results.md").read_text()
    print(report)
    assert results["failures"] == []
    assert results["runs_ok"] == {"baseline": 1, "streamrec": 1}
    assert results["workload"]["events"] == results["config"]["events"]
    assert results["machine"]["cores"] >= 1 and results["machine"]["cpu"]
    summary = results["summary"]
    for system in ("baseline", "streamrec"):
        figures = summary[system]
        assert figures["events_per_s"] > 0
        assert 0 < figures["recs_per_s"] <= figures["events_per_s"] * 1.001
        assert figures["cpu_s_per_1k_events"] > 0 and figures["peak_rss_mib"] > 0
        assert 0 <= figures["freshness_p50_ms"] <= figures["freshness_p95_ms"] \
            <= figures["freshness_p99_ms"]
    # The baseline emits once per event by design; streamrec coalesces per user and batch.
    assert summary["baseline"]["recs_per_s"] == summary["baseline"]["events_per_s"]
    ratio = results["ratios"]["streamrec/baseline"]
    expected = summary["streamrec"]["events_per_s"] / summary["baseline"]["events_per_s"]
    assert ratio == pytest.approx(expected, rel=1e-3)
    assert f"streamrec/baseline: {ratio:.2f}x" in report
    assert (f"GUARD FAILED: streamrec/baseline = {ratio:.2f}x, below the "
            f"{UNREACHABLE_RATIO}x guard") in output
    assert (out / "bench.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    phases = [phase for run in results["runs"]["streamrec"] for phase in run["load_profile"]]
    assert [p["load_fraction"] for p in phases] == [0.2]
    assert {"scoring", "produce", "state"} <= set(phases[0]["stages"])
    assert "streamrec: where the time goes" in report and "| 20% |" in report
