"""Pure arithmetic of the benchmark: sustained rates, CPU per event, quantiles, medians.

Every system is measured the same way: the harness samples ``(time, events taken from the
input topics, events fully processed, recommendations emitted, CPU seconds, ready)`` every
0.2 s while the system works through a backlog of ``n`` events, and :func:`sustained` takes
the rates from the moment the system took its first backlog event to the moment it finished
the last one. Warm-up is over before the backlog is sent (a probe has been through the
whole pipeline and the model), so this window holds all the work for all ``n`` events and
nothing else.

Why not the middle 80 % of the end counter: streamrec (ingest → ``events-by-user`` →
state) and the baseline (``group_by``) are pipelines with an internal topic, and their
first stage runs ahead of the last. Between the 10 % and 90 % marks of the *end* counter
the process then does less than its share of the work and the rate comes out too high —
measured here on a 6k backlog: 3,300 events/s over the middle 80 % against 1,740 events/s
for the whole drain. The middle-80 % rate is kept as ``events_per_s_mid80`` for reference.
What the window does include: the first fetch of the internal topic, which on Tansu can
wait Faust's whole fetch_max_wait (1.5 s) — the same for the baseline and streamrec, and
small against a 100k backlog (see docs/performance.md).

>>> samples = [Sample(t, 1000 * t, 1000 * t, 500 * t, 0.5 * t, True) for t in range(11)]
>>> window = sustained(samples, 10_000)
>>> window.events_per_s, window.recs_per_s, window.cpu_s_per_1k_events
(1000.0, 500.0, 0.5)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # monotonic seconds when the counts were true
    inputs: float  # backlog events taken from the input topics (first stage)
    events: float  # events whose last processing step is done (the backlog's, from 0)
    recs: float  # recommendations emitted
    cpu_s: float  # CPU seconds (user + system) of the system's processes so far
    ready: bool  # every process of the system reports ready (sticky once true)


@dataclass(frozen=True)
class Window:
    """Rates over the sustained part of a backlog run."""

    start_s: float  # window start, seconds after the first sample
    seconds: float
    events: float
    events_per_s: float
    recs_per_s: float
    cpu_s_per_1k_events: float
    cores: float  # CPU seconds per wall second in the window

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


class MeasurementError(ValueError):
    """The samples do not cover a sustained window: the run was too short, the system never
    became ready before the backlog was mostly consumed, or it stalled. Give it more events
    (``--events``) or look at the worker log next to the results."""


def sustained(samples: Sequence[Sample], n: int, lo: float | None = None,
              hi: float = 1.0) -> Window:
    """Rates from the first ready sample that shows input taken (``lo`` None) — or, given
    ``lo``, the first ready sample with ``lo``·n events processed — to the first sample with
    ``hi``·n events processed."""
    if not samples:
        raise MeasurementError("no samples")
    if lo is None:
        first = next((s for s in samples if s.inputs > 0 and s.ready), None)
    else:
        first = next((s for s in samples if s.events > 0 and s.events >= lo * n and s.ready),
                     None)
    last = next((s for s in samples if s.events >= hi * n), None)
    if first is None or last is None or last.t <= first.t or last.events <= first.events:
        reached = max(s.events for s in samples)
        raise MeasurementError(
            f"no sustained window: {reached:.0f}/{n} events processed"
            + ("" if any(s.ready for s in samples) else ", never ready")
        )
    seconds = last.t - first.t
    events = last.events - first.events
    cpu = last.cpu_s - first.cpu_s
    return Window(
        start_s=first.t - samples[0].t,
        seconds=seconds,
        events=events,
        events_per_s=events / seconds,
        recs_per_s=(last.recs - first.recs) / seconds,
        cpu_s_per_1k_events=1000.0 * cpu / events,
        cores=cpu / seconds,
    )


def first_output_s(samples: Sequence[Sample]) -> float | None:
    """Seconds from the first sample (the backlog was just sent) to the first output."""
    first = next((s for s in samples if s.events > 0), None)
    return None if first is None else first.t - samples[0].t


def rate_series(samples: Sequence[Sample], smooth_s: float = 1.0) -> list[tuple[float, float]]:
    """``(seconds since the first sample, events/s over the last smooth_s)`` for plots."""
    if not samples:
        return []
    t0 = samples[0].t
    out, j = [], 0
    for s in samples[1:]:
        while j < len(samples) - 1 and s.t - samples[j].t > smooth_s:
            j += 1
        ref = samples[j] if samples[j].t < s.t else None
        if ref is None:
            continue
        out.append((s.t - t0, (s.events - ref.events) / (s.t - ref.t)))
    return out


def quantiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank quantiles ``{"p50": ..}``; empty when there are no values."""
    if not values:
        return {}
    ordered = sorted(values)
    return {f"p{q:g}": ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered))
                                                         - 1))] for q in qs}


def median(values: Sequence[float | None]) -> float | None:
    """Median of the values that exist; None when none do."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def ratio_guard(ratios: dict[str, Any], min_ratio: float) -> str | None:
    """``None`` when streamrec / baseline reached ``min_ratio``, otherwise why it did not."""
    value = ratios.get("streamrec/baseline")
    if value is None:
        return "no streamrec/baseline ratio: both systems must run and succeed"
    if not value >= min_ratio:  # also refuses NaN
        return f"streamrec/baseline = {value:.2f}x, below the {min_ratio:g}x guard"
    return None
