"""Every metric the dashboard and the rules query is one the worker really exposes.

The exposition is built from streams.ops.metrics.create_metrics, the one place the worker's
metrics are defined, so renaming a metric there without updating deploy/ fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.support import (
    DASHBOARD_FILE,
    RULES_FILE,
    TARGET_LABELS,
    Exposition,
    PromQLRefs,
    iter_panels,
    parse_promql_refs,
    variable_query_expr,
)

# Series Prometheus itself writes for every target.
PROMETHEUS_SERIES = {"up": TARGET_LABELS}


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expr) for every panel target and every query variable of the dashboard."""
    found = [
        (f"{DASHBOARD_FILE.name} panel {panel['title']!r} target {target['refId']}", target["expr"])
        for panel in iter_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        expr = variable_query_expr(text)
        if expr:
            found.append((f"{DASHBOARD_FILE.name} variable {variable['name']!r}", expr))
    return found


def rule_exprs(rules: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"{RULES_FILE.name} {rule.get('alert') or rule.get('record')}", rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]


@pytest.fixture(scope="module")
def all_exprs(dashboard: dict[str, Any], rules: dict[str, Any]) -> list[tuple[str, str]]:
    exprs = dashboard_exprs(dashboard) + rule_exprs(rules)
    assert len(exprs) > 40, "expected the dashboard and rules to hold many expressions"
    return exprs


def test_every_queried_metric_is_exposed_or_recorded(
    all_exprs: list[tuple[str, str]],
    exposition: Exposition,
    recording_rules: list[dict[str, Any]],
) -> None:
    known = (
        exposition.sample_names | set(PROMETHEUS_SERIES) | {r["record"] for r in recording_rules}
    )
    unknown = [
        f"{where}: {name}"
        for where, expr in all_exprs
        for name in sorted(parse_promql_refs(expr).metric_names - known)
    ]
    assert not unknown, (
        "these metrics are neither exposed by streams.ops.metrics.create_metrics, nor recorded in "
        f"{RULES_FILE.name}, nor 'up':\n" + "\n".join(unknown)
    )


def test_selector_labels_exist_on_the_selected_metric(
    all_exprs: list[tuple[str, str]], exposition: Exposition
) -> None:
    labels_of = {**exposition.labels_by_sample, **PROMETHEUS_SERIES}
    wrong = [
        f"{where}: {name}{{{', '.join(sorted(labels - labels_of[name] - TARGET_LABELS))}}}"
        for where, expr in all_exprs
        for name, labels in parse_promql_refs(expr).selectors
        if name in labels_of and labels - labels_of[name] - TARGET_LABELS
    ]
    assert not wrong, "label matchers on labels these metrics do not have:\n" + "\n".join(wrong)


def test_grouping_labels_exist(all_exprs: list[tuple[str, str]], exposition: Exposition) -> None:
    known = exposition.label_names | TARGET_LABELS
    wrong = [
        f"{where}: {label}"
        for where, expr in all_exprs
        for label in sorted(parse_promql_refs(expr).grouping_labels - known)
    ]
    assert not wrong, "by/on/without clauses on labels no metric has:\n" + "\n".join(wrong)


def test_dashboard_charts_every_exposed_metric(
    dashboard: dict[str, Any], exposition: Exposition
) -> None:
    used = set().union(*(parse_promql_refs(e).metric_names for _, e in dashboard_exprs(dashboard)))
    unused = sorted(
        family for family, samples in exposition.samples_by_family.items() if not samples & used
    )
    assert not unused, f"metrics the worker exposes but no dashboard panel shows: {unused}"


@pytest.mark.parametrize(
    ("expr", "names", "grouping"),
    [
        (
            'histogram_quantile(0.99, sum by (le) (rate(a_bucket{job="x", le=~"1|1.0"}[5m])))',
            {"a_bucket"},
            {"le"},
        ),
        (
            "sum(rate(a_total[$__rate_interval])) / ignoring(reason) group_left b",
            {"a_total", "b"},
            {"reason"},
        ),
        ("a > 1e3 and on (job) deriv(b:c:d[10m]) > 0 offset 5m", {"a", "b:c:d"}, {"job"}),
        ('absent(up{job="w"} == 1) or vector(0)', {"up"}, set()),
        ('label_replace(x, "dst", "$1", "src", "(.*)") unless bool y', {"x", "y"}, set()),
        ('topk(10, max without (partition) (lag{instance=~"$instance"}))', {"lag"}, {"partition"}),
    ],
)
def test_parse_promql_refs(expr: str, names: set[str], grouping: set[str]) -> None:
    refs: PromQLRefs = parse_promql_refs(expr)
    assert refs.metric_names == names
    assert refs.grouping_labels == grouping


def test_parse_promql_refs_reports_matcher_labels() -> None:
    refs = parse_promql_refs('sum(rate(f_total{reason!="x", job="$job"}[5m]))')
    assert refs.selectors == [("f_total", frozenset({"reason", "job"}))]


def test_variable_query_expr() -> None:
    assert variable_query_expr('label_values(m{job="$job"}, instance)') == 'm{job="$job"}'
    assert variable_query_expr("label_values(job)") is None
    assert variable_query_expr("up == 1") == "up == 1"
