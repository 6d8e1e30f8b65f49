"""The STREAMREC_* variables the deployment sets are settings the worker reads, with valid values.

The worker reads its configuration only from STREAMREC_* variables through one
pydantic-settings class, streams.settings.Settings. A variable it does not know would be
silently ignored, and a value it rejects stops the worker at start: both are caught here.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import Any

import pytest

from tests.deploy.support import COMPOSE_FILE, DOCKERFILE, K8S_DIR, load_yaml_documents

PREFIX = "STREAMREC_"
DOCKERFILE_ENV = re.compile(r"\b(STREAMREC_[A-Z0-9_]+)=(\S+)")
# What a secretKeyRef resolves to in these tests (secret.example.yaml holds the same).
SECRET_PLACEHOLDER = "CHANGE-ME"


def image_environment() -> dict[str, str]:
    """STREAMREC_* defaults baked into the image by the Dockerfile's ENV."""
    return dict(DOCKERFILE_ENV.findall(re.sub(r"\\\n", " ", DOCKERFILE.read_text())))


def compose_environments() -> dict[str, dict[str, str | None]]:
    """Service name -> its environment (None: taken from the shell, unset by default)."""
    compose = load_yaml_documents(COMPOSE_FILE)[0]
    return {
        f"{COMPOSE_FILE.name}:{name}": dict(service.get("environment", {}))
        for name, service in compose["services"].items()
    }


def k8s_environments() -> dict[str, dict[str, str]]:
    """Pod workload -> the STREAMREC_* environment of its container (ConfigMap + env)."""
    docs = [
        (path, doc) for path in sorted(K8S_DIR.glob("*.yaml")) for doc in load_yaml_documents(path)
    ]
    config_maps = {
        d["metadata"]["name"]: d.get("data", {}) for _, d in docs if d["kind"] == "ConfigMap"
    }
    found: dict[str, dict[str, str]] = {}
    for path, doc in docs:
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            env: dict[str, str] = {}
            for source in container.get("envFrom", []):
                env.update(config_maps[source["configMapRef"]["name"]])
            for entry in container.get("env", []):
                env[entry["name"]] = entry.get("value", SECRET_PLACEHOLDER)
            found[f"{path.name}:{doc['kind']}/{container['name']}"] = env
    return found


def all_environments() -> dict[str, dict[str, Any]]:
    environments: dict[str, dict[str, Any]] = {
        name: {**image_environment(), **env}
        for name, env in compose_environments().items()
        if name.endswith((":worker", ":topic-init"))
    }
    environments.update(k8s_environments())
    return environments


def settings_class() -> Any:
    # Imported here, not at module level: while the module is missing only these tests fail.
    settings = importlib.import_module("streams.settings").Settings
    assert settings.model_config.get("env_prefix") == PREFIX
    return settings


def test_the_deployments_are_found() -> None:
    environments = all_environments()
    assert set(environments) == {
        "docker-compose.yml:worker",
        "docker-compose.yml:topic-init",
        "statefulset.yaml:StatefulSet/worker",
        "topics-job.yaml:Job/topics",
    }
    for env in environments.values():
        assert "STREAMREC_BROKER_URL" in env


def test_every_variable_is_a_settings_field() -> None:
    fields = settings_class().model_fields
    places: dict[str, set[str]] = {}
    environments: dict[str, dict[str, Any]] = {**compose_environments(), **k8s_environments()}
    for where, env in environments.items():
        for name in env:
            places.setdefault(name, set()).add(where)
    for name in image_environment():
        places.setdefault(name, set()).add(DOCKERFILE.name)
    for path in sorted(K8S_DIR.glob("*.yaml")):  # ConfigMaps not referenced by any workload too
        for doc in load_yaml_documents(path):
            if doc["kind"] == "ConfigMap":
                for name in doc.get("data", {}):
                    places.setdefault(name, set()).add(path.name)
    unknown = {
        name: sorted(where)
        for name, where in places.items()
        if name.startswith(PREFIX) and name.removeprefix(PREFIX).lower() not in fields
    }
    assert not unknown, f"STREAMREC_* variables Settings does not read: {unknown}"
    assert all(name.startswith(PREFIX) for name in image_environment())


@pytest.mark.parametrize("deployment", sorted(all_environments()))
def test_the_values_are_valid_settings(deployment: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    settings = settings_class()
    for name in os.environ:
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    for name, value in all_environments()[deployment].items():
        if value is not None:  # None: compose takes it from the shell, unset by default
            monkeypatch.setenv(name, str(value))
    try:
        settings()
    except ValidationError as error:
        pytest.fail(f"{deployment}: {error}", pytrace=False)
