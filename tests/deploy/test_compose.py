"""docker-compose.yml: validated by Docker Compose itself, then checked for intent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.support import COMPOSE_FILE, DEPLOY, ROOT, find_tool, run_tool

WORKER_PORT = "6066"


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


def test_worker_model_directory_is_optional_and_mounted_read_only(
    services: dict[str, Any],
) -> None:
    worker = services["worker"]
    (models,) = [v for v in worker["volumes"] if isinstance(v, dict)]
    assert models["type"] == "bind" and models["read_only"] is True
    assert models["source"] == "./models_out" and models["target"] == "/models"
    # No value: taken from the shell running compose, unset (trending only) when it has none.
    assert worker["environment"]["STREAMREC_MODEL_DIR"] is None
    assert "STREAMREC_MODEL_DIR=/models/current docker compose up" in COMPOSE_FILE.read_text()


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
