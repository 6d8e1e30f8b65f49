"""Every STREAMREC_* variable the deployment sets is a field of streams.settings.Settings.

The worker reads its configuration only from STREAMREC_* variables through one
pydantic-settings class; a variable set in compose or Kubernetes that the class does not know
would be silently ignored, so it is caught here.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from deploy_support import COMPOSE_FILE, DOCKERFILE, K8S_DIR, load_yaml_documents

PREFIX = "STREAMREC_"
VARIABLE = re.compile(r"\bSTREAMREC_[A-Z0-9_]+\b")


def _pod_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def deployment_variables() -> dict[str, set[str]]:
    """STREAMREC_* variable -> where it is set (compose, k8s ConfigMaps and env, Dockerfile)."""
    found: dict[str, set[str]] = {}

    def note(name: str, where: str) -> None:
        if name.startswith(PREFIX):
            found.setdefault(name, set()).add(where)

    compose = load_yaml_documents(COMPOSE_FILE)[0]
    for service_name, service in compose["services"].items():
        environment = service.get("environment", {})
        names = environment if isinstance(environment, dict) else [
            entry.split("=", 1)[0] for entry in environment
        ]
        for name in names:
            note(name, f"{COMPOSE_FILE.name}:{service_name}")

    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in load_yaml_documents(path):
            if doc["kind"] == "ConfigMap":
                for name in doc.get("data", {}):
                    note(name, f"{path.name}:ConfigMap")
            for container in _pod_containers(doc):
                for entry in container.get("env", []):
                    note(entry["name"], f"{path.name}:{doc['kind']}")

    for line in DOCKERFILE.read_text().splitlines():
        for name in VARIABLE.findall(line.split("#")[0]):
            if f"{name}=" in line:
                note(name, DOCKERFILE.name)
    return found


def settings_fields() -> dict[str, Any]:
    # Imported here, not at module level, so that only these tests fail while the settings
    # module is missing, not the whole test session.
    settings = importlib.import_module("streams.settings").Settings
    assert settings.model_config.get("env_prefix") == PREFIX
    return dict(settings.model_fields)


def test_deployment_sets_variables() -> None:
    variables = deployment_variables()
    assert {"STREAMREC_BROKER_URL", "STREAMREC_DATA_DIR", "STREAMREC_WEB_PORT"} <= set(variables)


def test_every_variable_is_a_settings_field() -> None:
    fields = settings_fields()
    unknown = {
        name: sorted(where)
        for name, where in deployment_variables().items()
        if name.removeprefix(PREFIX).lower() not in fields
    }
    assert not unknown, f"STREAMREC_* variables Settings does not read: {unknown}"


def test_required_settings_are_set_by_every_deployment() -> None:
    required = {
        PREFIX + name.upper() for name, info in settings_fields().items() if info.is_required()
    }
    variables = deployment_variables()
    for deployment in (COMPOSE_FILE.name + ":worker", "statefulset.yaml", "configmap.yaml"):
        pass
    compose_worker = {n for n, w in variables.items() if f"{COMPOSE_FILE.name}:worker" in w}
    k8s = {n for n, w in variables.items() if any(Path(x.split(":")[0]).suffix == ".yaml"
                                                   for x in w)}
    assert required <= compose_worker, f"compose worker lacks {required - compose_worker}"
    assert required <= k8s, f"Kubernetes manifests lack {required - k8s}"
