"""Fixtures for the deployment tests; the helpers live in support.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    COMPOSE_FILE,
    DASHBOARD_FILE,
    K8S_DIR,
    RULES_FILE,
    Exposition,
    find_tool,
    load_yaml_documents,
    worker_exposition,
)


@pytest.fixture(scope="session")
def promtool() -> str:
    return find_tool("promtool")


@pytest.fixture(scope="session")
def rules() -> dict[str, Any]:
    return yaml.safe_load(RULES_FILE.read_text())


@pytest.fixture(scope="session")
def alerting_rules(rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


@pytest.fixture(scope="session")
def recording_rules(rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in rules["groups"] for rule in group["rules"] if "record" in rule]


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_FILE.read_text())


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="session")
def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, doc) for path in sorted(K8S_DIR.glob("*.yaml")) for doc in load_yaml_documents(path)
    ]


@pytest.fixture(scope="session")
def exposition() -> Exposition:
    return worker_exposition()
