"""Prometheus scrape config and rules: promtool checks them and runs their unit tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    COMPOSE_FILE,
    K8S_DIR,
    PROMETHEUS_CONFIG,
    RULE_TESTS_DIR,
    RULES_FILE,
    RUNBOOK,
    WORKER_JOB,
    load_yaml_documents,
    run_tool,
)

SEVERITIES = {"warning", "critical"}
RUNBOOK_SUBSECTIONS = ["Meaning", "Impact", "Diagnosis", "Remediation"]
RUNBOOK_URL = "https://github.com/streamrec/streamrec/blob/main/deploy/RUNBOOK.md#"


def rule_test_files() -> list[Path]:
    files = sorted(RULE_TESTS_DIR.glob("*.yml"))
    assert files, f"no promtool unit tests in {RULE_TESTS_DIR}"
    return files


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_sections() -> dict[str, str]:
    """Level-2 heading -> its body, for deploy/RUNBOOK.md."""
    parts = re.split(r"^## +(.+?)\s*$", RUNBOOK.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_promtool_check_config(promtool: str) -> None:
    result = run_tool([promtool, "check", "config", str(PROMETHEUS_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout, "the config must load the rules file"


def test_promtool_check_rules(promtool: str) -> None:
    result = run_tool([promtool, "check", "rules", str(RULES_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    """The check above means something: promtool really parses the expressions."""
    broken = tmp_path / "broken.yml"
    rule = {"record": "job:x:rate5m", "expr": "sum(rate(x[5m])"}  # unbalanced parenthesis
    broken.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    result = run_tool([promtool, "check", "rules", str(broken)])
    assert result.returncode != 0


def test_promtool_rule_unit_tests_pass(promtool: str) -> None:
    result = run_tool([promtool, "test", "rules", *map(str, rule_test_files())])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_firing_and_quiet(alerting_rules: list[dict[str, Any]]) -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in rule_test_files():
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in alerting_rules}
    assert (fired | quiet) <= alerts, f"unit tests name unknown alerts: {(fired | quiet) - alerts}"
    assert alerts - fired == set(), "alerts no unit test makes fire"
    assert alerts - quiet == set(), "alerts no unit test keeps quiet"


def test_alerts_are_documented(alerting_rules: list[dict[str, Any]]) -> None:
    sections = runbook_sections()
    for rule in alerting_rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule.get("for"), f"{name}: alert on a sustained condition (set 'for')"
        annotations = rule["annotations"]
        assert annotations.get("summary") and annotations.get("description"), name
        assert annotations["runbook_url"] == RUNBOOK_URL + github_anchor(name), name
        assert name in sections, f"{RUNBOOK.name} has no '## {name}' section"
        subsections = re.findall(r"^### +(.+?)\s*$", sections[name], flags=re.M)
        assert subsections == RUNBOOK_SUBSECTIONS, f"{name}: runbook subsections {subsections}"


def test_runbook_documents_only_existing_alerts(alerting_rules: list[dict[str, Any]]) -> None:
    alerts = {rule["alert"] for rule in alerting_rules}
    documented = {title for title in runbook_sections() if title.startswith("Streamrec")}
    assert documented == alerts


def test_recording_rule_names_follow_the_convention(
    recording_rules: list[dict[str, Any]],
) -> None:
    # level:metric:operations (https://prometheus.io/docs/practices/rules/)
    pattern = re.compile(r"^[a-z_]+:streamrec_[a-z0-9_]+:[a-z0-9_]+$")
    assert [r["record"] for r in recording_rules if not pattern.match(r["record"])] == []


def test_the_worker_job_name_agrees_everywhere(
    rules: dict[str, Any], compose: dict[str, Any]
) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == WORKER_JOB]
    (dns,) = job["dns_sd_configs"]
    assert job["metrics_path"] == "/metrics"
    assert dns["names"] == ["worker"] and dns["port"] == 6066 and dns["type"] == "A"
    assert "worker" in compose["services"], f"{COMPOSE_FILE.name} has no 'worker' service"

    assert f'job="{WORKER_JOB}"' in RULES_FILE.read_text()

    services = [d for d in load_yaml_documents(K8S_DIR / "services.yaml") if d["kind"] == "Service"]
    assert WORKER_JOB in {s["metadata"]["name"] for s in services}, (
        "the ServiceMonitor's job label is the metrics Service's name"
    )
    (monitor,) = load_yaml_documents(K8S_DIR / "servicemonitor.yaml")
    assert "jobLabel" not in monitor["spec"]


@pytest.mark.parametrize("alert", ["StreamrecWorkerDown", "StreamrecNoWorkers"])
def test_worker_liveness_alerts_select_the_worker_job(
    alerting_rules: list[dict[str, Any]], alert: str
) -> None:
    (rule,) = [r for r in alerting_rules if r["alert"] == alert]
    assert f'up{{job="{WORKER_JOB}"}}' in rule["expr"]
