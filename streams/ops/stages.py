"""Where an event's time goes: the stages of its life, each timed into
``streamrec_stage_seconds{stage}``.

================ =======================================================================
stage            what it measures (observed once per …)
================ =======================================================================
``input_wait``   producer → ingest: an input event record's timestamp (the producer's create
                 time) to the moment the ingest agent takes it (… event)
``ingest``       decoding, validating and re-keying an ingest micro-batch, and handing its
                 bundles to the producer (… ingest micro-batch)
``rekey_hop``    ingest → state: a bundle's record timestamp (set when ingest sent it) to the
                 moment the state agent starts on it: the internal topic, the fetch, the
                 micro-batch window and the wait for the partition's lock (… bundle). Events
                 applied directly by the ingest actor (no hop: they arrived in the partition
                 that owns their user, ``streamrec_events_routed_total{path="direct"}``) are
                 not observed here
``state``        reading, applying and writing user state and the trending board, and the
                 TTL sweep (… state micro-batch); on the direct path also the wait for the
                 partition's lock
``scoring``      the model calls, content retrieval and the ranking layer, every variant and
                 the shadow (… state micro-batch)
``scoring_wait`` part of ``scoring``: the wait for the one scoring thread, busy with other
                 partitions' micro-batches, before a call's work starts (… scoring call
                 of a serving variant; the shadow's is not observed)
``emit``         building and encoding the recommendations, attribution (… state micro-batch)
``produce``      handing changelog, recommendation and feedback records to the producer until
                 the broker acknowledged all of them (… state micro-batch)
================ =======================================================================

The end-to-end figure is ``streamrec_freshness_seconds`` (event time → recommendation
acknowledged). Stages add up to it only roughly: the waits are per event or per bundle, the
work per micro-batch, and the clocks are the producer's and the worker's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import Histogram

SCORING_WAIT: Final = "scoring_wait"
STAGES: Final = ("input_wait", "ingest", "rekey_hop", "state", "scoring", SCORING_WAIT, "emit",
                 "produce")
STAGE_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)


@dataclass
class StageClock:
    """Splits one micro-batch's wall time between stages: call :meth:`lap` at the end of
    each piece of work with the stage it belonged to; :meth:`observe` records the totals."""

    started: float = field(default_factory=time.perf_counter)
    spent: dict[str, float] = field(default_factory=dict)

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.spent[stage] = self.spent.get(stage, 0.0) + (now - self.started)
        self.started = now

    def observe(self, histogram: Histogram) -> None:
        for stage, seconds in self.spent.items():
            histogram.labels(stage=stage).observe(seconds)


def observe_waits(histogram: Histogram, stage: str, now_ms: int,
                  record_times_ms: list[int | None]) -> None:
    """One observation per record: ``now_ms`` minus its timestamp (never negative; records
    without a timestamp are skipped)."""
    child = histogram.labels(stage=stage)
    for stamp in record_times_ms:
        if stamp is not None:
            child.observe(max(0.0, (now_ms - stamp) / 1000.0))
