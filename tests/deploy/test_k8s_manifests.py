"""Kubernetes manifests: validated against the Kubernetes API schemas, then checked for intent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.support import K8S_DIR, WORKER_JOB, load_yaml_documents

# Oldest Kubernetes release the manifests support; kubernetes-validate ships its schemas.
KUBERNETES_VERSION = "1.30.0"
# Not Kubernetes API objects (kustomize config) or CRDs the schemas do not know.
NOT_IN_CORE_SCHEMAS = {"Kustomization", "ServiceMonitor"}
# In the directory for reference, left out of kustomization.yaml on purpose.
OPTIONAL_FILES = {"servicemonitor.yaml", "secret.example.yaml"}
WORKER_PORT = 6066
SECRET_NAME = "streamrec-secrets"
# The model registry the workers read and the retraining CronJob writes (model-registry-pvc.yaml).
REGISTRY_CLAIM = "streamrec-model-registry"

Docs = list[tuple[Path, dict[str, Any]]]


def one(docs: Docs, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for _, d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def statefulset(k8s_documents: Docs) -> dict[str, Any]:
    return one(k8s_documents, "StatefulSet", "streamrec-worker")


@pytest.fixture(scope="module")
def worker(statefulset: dict[str, Any]) -> dict[str, Any]:
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    return container


@pytest.fixture(scope="module")
def config(k8s_documents: Docs) -> dict[str, str]:
    return one(k8s_documents, "ConfigMap", "streamrec-config")["data"]


def test_manifests_validate_against_the_kubernetes_schemas(k8s_documents: Docs) -> None:
    validated = []
    for path, doc in k8s_documents:
        if doc["kind"] in NOT_IN_CORE_SCHEMAS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            location = ".".join(str(p) for p in error.path)
            pytest.fail(f"{path.name} {doc['kind']}: {location}: {error.message}", pytrace=False)
        validated.append(doc["kind"])
    assert {"StatefulSet", "Service", "ConfigMap", "Job", "PodDisruptionBudget"} <= set(validated)


def test_the_validator_rejects_a_misspelt_field(worker: dict[str, Any]) -> None:
    """Strict validation means something: an unknown field fails."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x"},
        "spec": {"containers": [{**worker, "imagePullPolicyy": "Always"}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePullPolicyy"):
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_every_document_is_namespaced_and_labelled(k8s_documents: Docs) -> None:
    for path, doc in k8s_documents:
        if doc["kind"] in {"Kustomization", "Namespace"}:
            continue
        assert doc["metadata"]["namespace"] == "streamrec", path.name
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "streamrec", path.name


def test_kustomization_lists_every_required_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - OPTIONAL_FILES


def test_statefulset_keeps_state_on_a_volume_claim(
    statefulset: dict[str, Any], worker: dict[str, Any], config: dict[str, str]
) -> None:
    spec = statefulset["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == config["STREAMREC_DATA_DIR"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert int(config["STREAMREC_TOPIC_PARTITIONS"]) >= spec["replicas"]


def test_workers_read_the_model_registry_claim_read_only(
    k8s_documents: Docs, statefulset: dict[str, Any], worker: dict[str, Any],
    config: dict[str, str],
) -> None:
    """STREAMREC_MODEL_REGISTRY names where the shared registry claim is mounted; the
    workers only read it (the retraining CronJob and 'streamrec models publish' write it)."""
    claim = one(k8s_documents, "PersistentVolumeClaim", REGISTRY_CLAIM)
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "every worker mounts it at once"
    volumes = statefulset["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes
                 if v.get("persistentVolumeClaim", {}).get("claimName") == REGISTRY_CLAIM]
    assert volume["persistentVolumeClaim"]["readOnly"] is True
    (mount,) = [m for m in worker["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    assert config["STREAMREC_MODEL_REGISTRY"] == mount["mountPath"]
    assert "STREAMREC_MODEL_DIR" not in config, "exclusive with STREAMREC_MODEL_REGISTRY"
    assert not {e["name"] for e in worker["env"]} & {
        "STREAMREC_MODEL_REGISTRY", "STREAMREC_MODEL_DIR"}, "the ConfigMap alone says"
    claim_templates = {c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]}
    assert volume["name"] not in claim_templates, "one shared claim, not one per worker"


def test_services_and_budget_select_the_worker_pods(
    k8s_documents: Docs, statefulset: dict[str, Any]
) -> None:
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    selector = statefulset["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()

    headless = one(k8s_documents, "Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    metrics = one(k8s_documents, "Service", WORKER_JOB)
    assert metrics["spec"].get("clusterIP") != "None"
    for service in (headless, metrics):
        assert service["spec"]["selector"].items() <= pod_labels.items()
        (port,) = service["spec"]["ports"]
        assert port["port"] == WORKER_PORT and port["targetPort"] == "http"

    budget = one(k8s_documents, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert budget["spec"]["maxUnavailable"] == 1


def test_worker_probes_ports_and_scrape_annotations(
    statefulset: dict[str, Any], worker: dict[str, Any], config: dict[str, str]
) -> None:
    (port,) = worker["ports"]
    assert port == {"name": "http", "containerPort": WORKER_PORT, "protocol": "TCP"}
    assert config["STREAMREC_WEB_PORT"] == str(WORKER_PORT)
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert worker["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert worker["args"] == ["worker"]
    annotations = statefulset["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(WORKER_PORT),
        "prometheus.io/path": "/metrics",
    }


def test_worker_resources_are_bounded(worker: dict[str, Any]) -> None:
    resources = worker["resources"]
    for key in ("cpu", "memory"):
        assert key in resources["requests"] and key in resources["limits"], key


@pytest.mark.parametrize(("kind", "name"), [("StatefulSet", None), ("Job", None)])
def test_pods_run_unprivileged_with_a_read_only_root(
    k8s_documents: Docs, kind: str, name: str | None
) -> None:
    pod = one(k8s_documents, kind, name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert "emptyDir" in volumes[tmp["name"]]
        assert container["image"].split(":")[-1] not in {"latest", container["image"]}
        assert {"configMapRef": {"name": "streamrec-config"}} in container["envFrom"]


def test_secrets_come_from_the_secret_by_reference(k8s_documents: Docs) -> None:
    example = one(k8s_documents, "Secret", SECRET_NAME)
    assert set(example["stringData"].values()) == {"CHANGE-ME"}, "placeholders only"
    for kind in ("StatefulSet", "Job"):
        (container,) = one(k8s_documents, kind)["spec"]["template"]["spec"]["containers"]
        for env in container["env"]:
            ref = env["valueFrom"]["secretKeyRef"]
            assert ref["name"] == SECRET_NAME and ref["key"] in example["stringData"]
    config = one(k8s_documents, "ConfigMap", "streamrec-config")["data"]
    secret_like = [k for k in config if any(w in k for w in ("PASSWORD", "KEY", "TOKEN"))]
    assert secret_like == [], "secrets belong in the Secret, not the ConfigMap"


def test_topic_job_creates_the_topics(k8s_documents: Docs) -> None:
    job = one(k8s_documents, "Job", "streamrec-topics")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["topics", "create"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"OnFailure", "Never"}


def test_service_monitor_structure(k8s_documents: Docs) -> None:
    """The ServiceMonitor CRD has no schema in kubernetes-validate: check it by hand."""
    (monitor,) = load_yaml_documents(K8S_DIR / "servicemonitor.yaml")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(monitor["spec"]) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
    service = one(k8s_documents, "Service", WORKER_JOB)
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    headless = one(k8s_documents, "Service", "streamrec-worker-headless")
    assert not selector.items() <= headless["metadata"]["labels"].items(), (
        "select only the metrics Service, or every worker is scraped twice"
    )
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert set(endpoint) <= {"port", "path", "scheme", "interval", "scrapeTimeout"}
