"""What the soak measures: process RSS, bytes on disk, and the worker's own counters."""

from __future__ import annotations

import os
from pathlib import Path

from devtools.processes import http_get


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process (Linux ``/proc``); None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (like ``du``; files RocksDB deletes while we
    walk are skipped)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


def scrape(url: str, timeout_s: float = 5.0) -> dict[str, float]:
    """A Prometheus text endpoint as ``{sample name: value summed over labels}``; empty
    when nothing answers."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http_get(url, timeout_s)
    if status != 200:
        return {}
    text = body.decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + float(sample.value)
    return totals


def processed_events(metrics: dict[str, float]) -> float | None:
    """Events the state stage has processed (duplicates included), from a scrape."""
    return metrics.get("streamrec_batch_size_events_sum")
