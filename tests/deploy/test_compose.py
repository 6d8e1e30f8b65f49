"""docker-compose.yml: validated by Docker Compose itself, then checked for intent."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy.support import COMPOSE_FILE, DEPLOY, DOCKERFILE, ROOT, find_tool, run_tool

WORKER_PORT = "6066"
# Settings the project no longer has; setting them would at best be ignored.
REMOVED_SETTINGS = ("STREAMREC_BROKER_FLAVOUR",)


def prometheus_storage_path(service: dict[str, Any]) -> str | None:
    flags = [a for a in service.get("command", []) if a.startswith("--storage.tsdb.path=")]
    return flags[-1].split("=", 1)[1] if flags else None


# Where each service that keeps data on a named volume is told to keep it: without this setting
# the data goes to the image's default, and the volume would hold nothing.
DATA_DIR_SETTING: dict[str, Callable[[dict[str, Any]], str | None]] = {
    # Unset, the apache/kafka image writes its logs under /tmp.
    "kafka": lambda service: service["environment"].get("KAFKA_LOG_DIRS"),
    "prometheus": prometheus_storage_path,
    # Grafana's data path: GF_PATHS_DATA, which the grafana/grafana image sets to /var/lib/grafana.
    "grafana": lambda service: service.get("environment", {}).get(
        "GF_PATHS_DATA", "/var/lib/grafana"
    ),
    # The model registry the workers load promoted versions from.
    "worker": lambda service: service["environment"].get("STREAMREC_MODEL_REGISTRY"),
}


def mounts(service: dict[str, Any]) -> list[tuple[str | None, str, dict[str, Any]]]:
    """(source, target, options) of a service's volumes, short or long syntax; source None for
    an anonymous volume."""
    found: list[tuple[str | None, str, dict[str, Any]]] = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found.append((volume.get("source"), volume["target"], volume))
        else:
            parts = volume.split(":")
            if len(parts) == 1:
                found.append((None, parts[0], {}))
            else:
                found.append((parts[0], parts[1], {}))
    return found


def named_volume_mounts(
    compose: dict[str, Any], service: dict[str, Any]
) -> list[tuple[str, str, dict[str, Any]]]:
    declared = compose.get("volumes") or {}
    return [(s, t, o) for s, t, o in mounts(service) if s is not None and s in declared]


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def test_docker_compose_accepts_the_file() -> None:
    docker_compose = find_tool("docker-compose")
    result = run_tool([docker_compose, "-f", str(COMPOSE_FILE), "config", "--quiet"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warn" not in result.stderr.lower(), result.stderr


def test_services(services: dict[str, Any]) -> None:
    assert set(services) == {"kafka", "topic-init", "worker", "prometheus", "grafana"}


def test_kafka_is_a_single_kraft_node_with_a_healthcheck(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["image"].split(":")[1][0].isdigit(), "pin a Kafka release"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert len(env["CLUSTER_ID"]) == 22, "a base64url-encoded 16-byte id"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_topic_init_runs_once_after_kafka_is_healthy(services: dict[str, Any]) -> None:
    init = services["topic-init"]
    assert init["command"] == ["topics", "create"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert init["restart"] == "no"


def test_worker_scales(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert worker["build"] == "."
    assert worker["command"] == ["worker"]
    assert "ports" not in worker, "a fixed host port breaks --scale worker=N"
    assert "container_name" not in worker, "a fixed container name breaks --scale worker=N"
    assert worker["expose"] == [WORKER_PORT]
    env = worker["environment"]
    assert env["STREAMREC_BROKER_URL"] == "kafka://kafka:9092"
    assert env["STREAMREC_WEB_PORT"] == WORKER_PORT
    # The RocksDB state: an anonymous volume, so that every replica gets its own.
    assert env["STREAMREC_DATA_DIR"] in worker["volumes"]
    assert worker["depends_on"]["topic-init"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_workers_share_one_model_registry_volume(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    """Every replica mounts the same named volume where STREAMREC_MODEL_REGISTRY points, so a
    version published once can be promoted on all of them; no fixed model directory."""
    worker = services["worker"]
    env = worker["environment"]
    assert "STREAMREC_MODEL_DIR" not in env, "exclusive with STREAMREC_MODEL_REGISTRY"
    (registry,) = named_volume_mounts(compose, worker)
    source, target, _options = registry
    assert target == env["STREAMREC_MODEL_REGISTRY"] == "/models/registry"
    assert (compose["volumes"] or {})[source] is None, "a plain local volume, no external one"


def test_the_image_makes_a_new_registry_volume_writable() -> None:
    """A new named volume takes the ownership of the image's directory: the runtime stage must
    create /models/registry owned by the image's user, or `models publish` cannot write."""
    steps = re.sub(r"\\\n", " ", DOCKERFILE.read_text()).split("\nFROM ")[-1]
    run = " ".join(line for line in steps.splitlines() if line.startswith("RUN "))
    commands = [shlex.split(c) for c in re.split(r"&&|;", run.removeprefix("RUN "))]
    assert any(c[:2] == ["mkdir", "-p"] and "/models/registry" in c for c in commands)
    assert any(c[:2] == ["chown", "streamrec:streamrec"] and "/models/registry" in c
               for c in commands)


def test_trained_models_are_mounted_read_only_for_publishing(services: dict[str, Any]) -> None:
    worker = services["worker"]
    (models,) = [v for v in worker["volumes"] if isinstance(v, dict)]
    assert models["type"] == "bind" and models["read_only"] is True
    assert models["source"] == "./models_out" and models["target"] == "/models/out"
    registry = worker["environment"]["STREAMREC_MODEL_REGISTRY"]
    assert not models["target"].startswith(registry + "/") and not registry.startswith(
        models["target"] + "/"
    ), "neither mount may sit inside the other"


def test_the_file_says_how_to_publish_and_promote() -> None:
    text = COMPOSE_FILE.read_text()
    commands = re.findall(r"docker compose run --rm worker (models \w+|experiment \w+)", text)
    assert {"models publish", "models promote", "models list", "models rollback"} <= set(
        commands
    )
    assert "--out ./models_out/current" in text
    assert "models publish /models/out/current" in text, "the bind mount's path in the image"
    assert "STREAMREC_MODEL_DIR=" not in text, "the registry replaces the fixed model directory"


def test_bind_mounted_config_exists(services: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                path = (ROOT / source).resolve()
                assert path.exists(), f"{name} mounts missing {source}"
                assert path.is_relative_to(DEPLOY), f"{name} mounts {source} outside deploy/"


def test_prometheus_loads_the_config_and_rules(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:v")
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"])
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./deploy/prometheus/rules"] == "/etc/prometheus/rules"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_grafana_is_provisioned(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["./deploy/grafana/provisioning/datasources"] == (
        "/etc/grafana/provisioning/datasources"
    )
    assert mounts["./deploy/grafana/provisioning/dashboards"] == (
        "/etc/grafana/provisioning/dashboards"
    )
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]


def test_named_volumes_are_declared_and_each_used_by_one_service(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    used = [s for service in services.values() for s, _, _ in named_volume_mounts(compose, service)]
    assert sorted(used) == sorted(compose.get("volumes") or {}), (
        "every top-level volume is mounted by exactly one service"
    )
    for name, service in services.items():
        for source, _target, _options in mounts(service):
            if source is not None and not source.startswith((".", "/", "~")):
                assert source in (compose.get("volumes") or {}), f"{name}: undeclared {source}"


@pytest.mark.parametrize("name", sorted(DATA_DIR_SETTING))
def test_named_volume_holds_the_service_data(
    compose: dict[str, Any], services: dict[str, Any], name: str
) -> None:
    service = services[name]
    (volume,) = named_volume_mounts(compose, service)
    source, target, options = volume
    assert DATA_DIR_SETTING[name](service) == target, (
        f"{name} mounts {source} at {target} but keeps its data elsewhere"
    )
    # The volume takes the ownership of the image's directory on first use (the images create
    # it for their non-root user); nocopy would leave it root-owned and unwritable.
    assert not options.get("volume", {}).get("nocopy"), f"{name}: {source} must not be nocopy"


def test_every_service_with_a_named_volume_has_a_data_dir_check(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    with_volumes = {n for n, s in services.items() if named_volume_mounts(compose, s)}
    assert with_volumes == set(DATA_DIR_SETTING), "add the service's data dir to DATA_DIR_SETTING"


def test_kafka_keeps_its_logs_on_the_volume(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    assert kafka["environment"]["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert "kafka-data:/var/lib/kafka/data" in kafka["volumes"]
    # KRaft's metadata log defaults to the first log dir; if set it must be on the volume too.
    metadata = kafka["environment"].get("KAFKA_METADATA_LOG_DIR", "/var/lib/kafka/data")
    assert metadata.startswith("/var/lib/kafka/data")


def test_no_service_sets_a_removed_setting(services: dict[str, Any]) -> None:
    for name, service in services.items():
        removed = set(service.get("environment") or {}) & set(REMOVED_SETTINGS)
        assert not removed, f"{name} sets {sorted(removed)}, which no longer exist"
    assert not any(setting in COMPOSE_FILE.read_text() for setting in REMOVED_SETTINGS)
