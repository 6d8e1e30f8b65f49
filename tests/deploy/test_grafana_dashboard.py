"""Grafana dashboard and provisioning: structure current Grafana loads, PromQL promtool parses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.support import (
    COMPOSE_FILE,
    DASHBOARD_FILE,
    GRAFANA_PROVISIONING,
    iter_panels,
    run_tool,
    substitute_grafana_variables,
)

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24
EXPECTED_ROWS = [
    "Overview",
    "Throughput",
    "Freshness",
    "Consumer lag",
    "Dead letters and fallbacks",
    "Batch and scoring latency",
    "Model and state",
    "Rebalances and recovery",
    "Catalogue and text",
    "Ranking, rules and search",
    "Models and experiments",
    "Latency by stage",
    "Process",
]


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in iter_panels(dashboard["panels"]) if p["type"] != "row"]


def provisioned_datasource() -> dict[str, Any]:
    (path,) = sorted((GRAFANA_PROVISIONING / "datasources").glob("*.yml"))
    (datasource,) = yaml.safe_load(path.read_text())["datasources"]
    return datasource


def test_dashboard_header(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"] == "streamrec-workers"
    assert dashboard["title"] == "streamrec / Workers"
    assert dashboard["id"] is None, "provisioned dashboards must not carry a database id"


def test_datasource_is_a_variable_selecting_the_provisioned_uid(
    dashboard: dict[str, Any],
) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    provisioned = provisioned_datasource()
    assert provisioned["type"] == "prometheus"
    assert datasource["current"]["value"] == provisioned["uid"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE_REF, variable["name"]


def test_every_panel_and_target_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    for panel in data_panels(dashboard):
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE_REF, panel["title"]


def test_panels_are_well_formed(dashboard: dict[str, Any]) -> None:
    panels = list(iter_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in data_panels(dashboard):
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["title"] and panel.get("description"), panel["id"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        targets = panel["targets"]
        assert targets, panel["title"]
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(t["expr"].strip() for t in targets), panel["title"]


def test_grid_positions_fit_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in iter_panels(dashboard["panels"]):
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) and grid[k] >= 0 for k in "hwxy"), panel["title"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= GRID_COLUMNS
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_rows_in_order(dashboard: dict[str, Any]) -> None:
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == EXPECTED_ROWS


def test_freshness_quantiles_come_from_the_histogram(dashboard: dict[str, Any]) -> None:
    (panel,) = [p for p in data_panels(dashboard) if p["title"] == "Freshness p50 / p95 / p99"]
    exprs = [t["expr"] for t in panel["targets"]]
    for quantile, expr in zip(("0.5", "0.95", "0.99"), exprs, strict=True):
        assert expr.startswith(f"histogram_quantile({quantile}, ")
        assert "rate(streamrec_freshness_seconds_bucket{" in expr and "by (le)" in expr
    assert panel["fieldConfig"]["defaults"]["unit"] == "s"


def test_counters_are_rated_over_the_rate_interval(dashboard: dict[str, Any]) -> None:
    for panel in data_panels(dashboard):
        for target in panel["targets"]:
            for window in re.findall(r"\[([^\]]+)\]", target["expr"]):
                assert window == "$__rate_interval", f"{panel['title']}: [{window}]"


def test_dashboard_exprs_are_valid_promql(
    dashboard: dict[str, Any], promtool: str, tmp_path: Path
) -> None:
    """One recording rule per target expression, checked by promtool."""
    rules = [
        {
            "record": f"dashboard:panel_{panel['id']}:{target['refId'].lower()}",
            "expr": substitute_grafana_variables(target["expr"]),
        }
        for panel in data_panels(dashboard)
        for target in panel["targets"]
    ]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_tool([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_dashboard_provider_points_where_compose_mounts_the_dashboards(
    compose: dict[str, Any],
) -> None:
    (path,) = sorted((GRAFANA_PROVISIONING / "dashboards").glob("*.yml"))
    (provider,) = yaml.safe_load(path.read_text())["providers"]
    assert provider["type"] == "file" and provider["folder"] == "streamrec"
    mounts = {
        target: source
        for source, target, *_ in (v.split(":") for v in compose["services"]["grafana"]["volumes"])
    }
    source = mounts[provider["options"]["path"]]
    assert (COMPOSE_FILE.parent / source).resolve() == DASHBOARD_FILE.parent
    datasource = provisioned_datasource()
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]
