"""The metric bundle follows the naming rules (STYLE.md §7) and holds no global state."""

from __future__ import annotations

import dataclasses
import re

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from streams.ops.metrics import Metrics, create_metrics

# Labels that would make a series per user, item, session or event.
HIGH_CARDINALITY_LABEL = re.compile(r"(^|_)(user|item|session|event_id|key|id)(_|$)")
# Words that name a duration or a point in time: such metrics are in seconds.
TIME_WORD = re.compile(r"(^|_)(seconds|duration|latency|time|timestamp|age|freshness)(_|$)")
NON_BASE_UNIT = re.compile(r"(^|_)(ms|millis|milliseconds|us|micros|minutes|hours)(_|$)")


def with_children(metrics: Metrics) -> Metrics:
    """Give every labelled metric one child, so each appears in the exposition."""
    for metric in wrapped(metrics):
        label_names = metric._labelnames  # no public accessor
        if label_names:
            metric.labels(*("x" for _ in label_names))
    metrics.model_info.info({"name": "m", "version": "1", "provider": "CPUExecutionProvider"})
    return metrics


def wrapped(metrics: Metrics) -> list[MetricWrapperBase]:
    return [
        value for f in dataclasses.fields(metrics)
        if isinstance(value := getattr(metrics, f.name), MetricWrapperBase)
    ]


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    with_children(create_metrics(registry, version="1.2.3"))
    return registry


def families(registry: CollectorRegistry) -> dict[str, tuple[str, list[Sample]]]:
    """Family name -> (type, samples), as a Prometheus server reads the text format.

    prometheus_client also writes a ``<name>_created`` gauge (the creation time, in seconds)
    beside each counter and histogram; those belong to the library and are left out here.
    """
    text = generate_latest(registry).decode()
    found = {f.name: (f.type, f.samples) for f in text_string_to_metric_families(text)}
    return {
        name: value for name, value in found.items()
        if not (name.endswith("_created")
                and found.get(name.removesuffix("_created"), ("",))[0] in {"counter", "histogram"})
    }


def test_every_field_is_a_registered_metric() -> None:
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    fields = [f.name for f in dataclasses.fields(metrics) if f.name != "registry"]
    assert len(wrapped(metrics)) == len(fields)
    assert metrics.registry is registry


STANDARD_PREFIXES = ("process_", "python_")
"""prometheus_client's own process, platform and GC collectors, registered on purpose."""


def test_every_sample_is_prefixed(registry: CollectorRegistry) -> None:
    names = {s.name for _, samples in families(registry).values() for s in samples}
    ours = {name for name in names if not name.startswith(STANDARD_PREFIXES)}
    assert ours and all(name.startswith("streamrec_") for name in ours), sorted(ours)


def test_process_metrics_are_exposed(registry: CollectorRegistry) -> None:
    names = {s.name for _, samples in families(registry).values() for s in samples}
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total",
            "python_info"} <= names


def test_counters_end_in_total(registry: CollectorRegistry) -> None:
    counters = {name: samples for name, (kind, samples) in families(registry).items()
                if kind == "counter"}
    assert len(counters) >= 10
    for name, samples in counters.items():
        assert not name.endswith("_total"), f"{name}: prometheus_client adds _total itself"
        assert {s.name for s in samples} == {f"{name}_total"}, name
    # Nothing else ends in _total.
    others = [name for name, (kind, _) in families(registry).items()
              if kind != "counter" and name.endswith("_total")]
    assert others == []


def test_durations_and_times_are_in_seconds(registry: CollectorRegistry) -> None:
    for name in families(registry):
        suffixes = name.removeprefix("streamrec_")
        assert not NON_BASE_UNIT.search(suffixes), f"{name}: use base units (seconds)"
        if TIME_WORD.search(suffixes):
            assert name.endswith("_seconds"), f"{name}: a time or duration, in seconds"


def test_bytes_and_messages_name_their_unit(registry: CollectorRegistry) -> None:
    assert "streamrec_state_disk_bytes" in families(registry)
    assert "streamrec_consumer_lag_messages" in families(registry)


def test_no_high_cardinality_labels(registry: CollectorRegistry) -> None:
    for name, (_, samples) in families(registry).items():
        for sample in samples:
            for label in sample.labels:
                if name == "streamrec_model" and label in {"name", "version", "provider"}:
                    continue
                assert not HIGH_CARDINALITY_LABEL.search(label), f"{name}{{{label}}}"


def test_histograms_have_buckets_and_help(registry: CollectorRegistry) -> None:
    text = generate_latest(registry).decode()
    for family in text_string_to_metric_families(text):
        assert family.documentation.strip(), f"{family.name} has no help text"
        if family.type == "histogram":
            buckets = [s for s in family.samples if s.name.endswith("_bucket")]
            assert len(buckets) >= 5 and buckets[-1].labels["le"] == "+Inf", family.name


def test_build_info_carries_the_version(registry: CollectorRegistry) -> None:
    (sample,) = families(registry)["streamrec_build_info"][1]
    assert sample.name == "streamrec_build_info"
    assert sample.labels["version"] == "1.2.3" and sample.value == 1.0


def test_two_bundles_on_two_registries_are_independent() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    a, b = create_metrics(first), create_metrics(second)
    a.recommendations_emitted.inc(3)
    a.dead_letters.labels(reason="invalid_json").inc()
    assert first.get_sample_value("streamrec_recommendations_emitted_total") == 3
    assert second.get_sample_value("streamrec_recommendations_emitted_total") == 0
    assert second.get_sample_value("streamrec_dead_letters_total",
                                   {"reason": "invalid_json"}) is None
    assert b.recommendations_emitted is not a.recommendations_emitted


def test_the_same_registry_twice_is_refused() -> None:
    registry = CollectorRegistry()
    create_metrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        create_metrics(registry)
