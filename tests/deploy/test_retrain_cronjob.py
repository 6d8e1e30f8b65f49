"""The retraining CronJob and the registry claim: valid Kubernetes objects, the job runs
``streamrec retrain`` daily and never twice at once, with the workers' configuration and the
shared registry volume."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.support import K8S_DIR, load_yaml_documents
from tests.deploy.test_k8s_manifests import KUBERNETES_VERSION, SECRET_NAME

CRONJOB_FILE = K8S_DIR / "retrain-cronjob.yaml"
PVC_FILE = K8S_DIR / "model-registry-pvc.yaml"
CLAIM = "streamrec-model-registry"


def only(path: Path) -> dict[str, Any]:
    (doc,) = load_yaml_documents(path)
    return doc


@pytest.fixture(scope="module")
def cronjob() -> dict[str, Any]:
    return only(CRONJOB_FILE)


@pytest.fixture(scope="module")
def pod(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    (only_container,) = pod["containers"]
    return only_container


@pytest.fixture(scope="module")
def worker() -> dict[str, Any]:
    statefulset = only(K8S_DIR / "statefulset.yaml")
    (worker_container,) = statefulset["spec"]["template"]["spec"]["containers"]
    return worker_container


@pytest.mark.parametrize("path", [CRONJOB_FILE, PVC_FILE], ids=lambda p: p.name)
def test_valid_against_the_kubernetes_schemas(path: Path) -> None:
    doc = only(path)
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        location = ".".join(str(p) for p in error.path)
        pytest.fail(f"{path.name}: {location}: {error.message}", pytrace=False)
    assert doc["metadata"]["namespace"] == "streamrec"
    assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "streamrec"


def test_kustomization_applies_both_and_names_the_training_image(container: dict[str, Any]
                                                                 ) -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert {CRONJOB_FILE.name, PVC_FILE.name} <= set(kustomization["resources"])
    image, tag = container["image"].rsplit(":", 1)
    assert tag not in {"", "latest"}
    assert image in {entry["name"] for entry in kustomization["images"]}


def test_runs_daily_and_never_twice_at_once(cronjob: dict[str, Any]) -> None:
    spec = cronjob["spec"]
    minute, hour, day, month, weekday = spec["schedule"].split()
    assert minute.isdigit() and hour.isdigit() and (day, month, weekday) == ("*", "*", "*")
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] <= 24 * 3600, "a run ends before the next one is due"
    assert job["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}


def test_runs_streamrec_retrain_with_valid_options(container: dict[str, Any]) -> None:
    from streams.lifecycle.retrain_cli import add_retrain_arguments, options_from

    command, *options = container["args"]
    assert command == "retrain"
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_retrain_arguments(parser)
    parsed = options_from(parser.parse_args(options))
    assert parsed.since_s == 7 * 86400 and parsed.mode == "shadow"
    assert parsed.work_dir is not None
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert str(parsed.work_dir) in mounts.values()
    assert container["workingDir"] in mounts.values(), "the root file system is read-only"


def test_the_training_image_is_explained(container: dict[str, Any]) -> None:
    text = CRONJOB_FILE.read_text()
    assert "[train]" in text and "PyTorch" in text
    assert container["image"] != "ghcr.io/streamrec/streamrec:0.1.0", (
        "the worker image has no PyTorch: training would fail")


def test_same_configuration_as_the_workers(container: dict[str, Any],
                                           worker: dict[str, Any]) -> None:
    assert container["envFrom"] == worker["envFrom"]
    worker_env = {e["name"]: e for e in worker["env"]}
    for entry in container["env"]:
        if "valueFrom" in entry:
            assert entry == worker_env[entry["name"]]
            assert entry["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME
    names = {e["name"] for e in container["env"]}
    assert {"STREAMREC_BROKER_SASL_USERNAME", "STREAMREC_BROKER_SASL_PASSWORD"} <= names


def test_the_registry_is_the_shared_claim(pod: dict[str, Any], container: dict[str, Any]
                                          ) -> None:
    claim = only(PVC_FILE)
    assert claim["metadata"]["name"] == CLAIM
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in container["volumeMounts"]
                if volumes[m["name"]].get("persistentVolumeClaim")]
    assert volumes[mount["name"]]["persistentVolumeClaim"] == {"claimName": CLAIM}
    assert not mount.get("readOnly"), "the job publishes into the registry"
    # The workers' ConfigMap names the registry; the job's own env must not point elsewhere.
    config = only(K8S_DIR / "configmap.yaml")["data"]
    env = {**config, **{e["name"]: e.get("value") for e in container["env"]}}
    assert env["STREAMREC_MODEL_REGISTRY"] == mount["mountPath"]
    assert "STREAMREC_MODEL_DIR" not in env, "exclusive with STREAMREC_MODEL_REGISTRY"


def test_publishes_where_the_workers_read(pod: dict[str, Any], container: dict[str, Any]
                                          ) -> None:
    """The same claim at the same path as the workers (they read it, the job writes it)."""
    statefulset = only(K8S_DIR / "statefulset.yaml")["spec"]["template"]["spec"]

    def registry_mounts(spec: dict[str, Any], mounting: dict[str, Any]) -> list[str]:
        claims = {v["name"] for v in spec["volumes"]
                  if v.get("persistentVolumeClaim", {}).get("claimName") == CLAIM}
        return [m["mountPath"] for m in mounting["volumeMounts"] if m["name"] in claims]

    (worker_container,) = statefulset["containers"]
    assert registry_mounts(pod, container) == registry_mounts(statefulset, worker_container)


def test_runs_unprivileged_with_a_read_only_root(pod: dict[str, Any],
                                                 container: dict[str, Any]) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]]
    for key in ("cpu", "memory"):
        assert key in container["resources"]["requests"]
        assert key in container["resources"]["limits"]


def test_the_environment_is_valid_settings(container: dict[str, Any],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from streams.settings import Settings

    config = only(K8S_DIR / "configmap.yaml")["data"]
    for name in os.environ:
        if name.startswith("STREAMREC_"):
            monkeypatch.delenv(name)
    for name, value in config.items():
        monkeypatch.setenv(name, str(value))
    for entry in container["env"]:
        monkeypatch.setenv(entry["name"], entry.get("value", "CHANGE-ME"))
    try:
        settings = Settings()
    except ValidationError as error:
        pytest.fail(f"retrain-cronjob.yaml: {error}", pytrace=False)
    assert settings.model_registry == Path("/models/registry")
