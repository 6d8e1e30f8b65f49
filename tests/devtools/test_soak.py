"""The soak benchmark's pieces that need no broker: the load shape and the summary."""

from __future__ import annotations

import argparse
from collections import Counter

from devtools.soak import add_soak_arguments
from devtools.soak.load import HEAVY_PREFIX, REGULAR_PREFIX, LoadShape, synthetic_events
from devtools.soak.run import Sample, summarise


def test_every_regular_user_visits_the_configured_number_of_times() -> None:
    shape = LoadShape(users=500, events_per_user=3, revisit_lag=40, heavy_users=7,
                      heavy_share=0.2, seed=1)
    events = list(synthetic_events(shape))
    visits = Counter(e.user_id for e in events if e.user_id.startswith(REGULAR_PREFIX))
    assert len(visits) == 500 and set(visits.values()) == {3}
    heavy = [e for e in events if e.user_id.startswith(HEAVY_PREFIX)]
    assert {e.user_id for e in heavy} <= {f"{HEAVY_PREFIX}{n}" for n in range(7)}
    assert 0.15 < len(heavy) / len(events) < 0.25
    introduced = [e.users_so_far for e in events]
    assert introduced == sorted(introduced) and introduced[-1] == 500
    assert events == list(synthetic_events(shape))  # deterministic


def test_summary_reads_a_levelling_rss_and_proportional_disk() -> None:
    samples = [
        Sample(elapsed_s=n * 5.0, users=n * 10_000, events=n * 10_500, events_per_s=2000.0,
               worker_rss_mb=min(100.0 + n * 20, 500.0), broker_rss_mb=None,
               disk_mb=n * 10_000 * 300 / 2**20, state_users_estimate=n * 10_000)
        for n in range(1, 61)
    ]
    summary = summarise(samples, {"regular_bytes_mean": 650.0})
    assert summary["worker_rss_mb_growth_last_quarter"] == 0.0
    assert summary["events_per_s_median_by_third"] == [2000.0] * 3
    assert summary["disk_bytes_per_user_by_third"] == [300, 300, 300]


def test_command_line_defaults_drive_a_million_users() -> None:
    parser = argparse.ArgumentParser()
    add_soak_arguments(parser)
    args = parser.parse_args([])
    assert args.users == 1_000_000 and args.json_out.name == "soak.json"
