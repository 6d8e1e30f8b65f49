"""Processes the development tools start and stop, and how they talk to them.

One implementation each of what the demo, the benchmark, the soak and the tests all need: a
free port, a worker subprocess (``python -m streams.cli worker`` configured only through
``STREAMREC_*``), its readiness, and stopping a process group (a signal, a grace period,
then SIGKILL to the whole group). Every process is started in its own session, so its
process group holds it and whatever it starts, and stopping it leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from devtools import CHECKOUT_ROOT
from devtools.errors import WorkerNotReadyError
from streams.settings import Settings

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
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


def spawn(command: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None = None,
          cwd: Path = CHECKOUT_ROOT) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session (and process group) of its own, in the checkout, with
    stdout and stderr appended to ``log_path``. Stop it with :func:`stop_process`."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(command), env=None if env is None else dict(env), cwd=cwd, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )


def streamrec_command(*args: str) -> list[str]:
    """``streamrec <args>`` as run by this interpreter (``python -m streams.cli``)."""
    return [sys.executable, "-m", "streams.cli", *args]


def worker_command() -> list[str]:
    """``streamrec worker`` as run by this interpreter."""
    return streamrec_command("worker")


def start_worker(settings: Settings, log_path: Path,
                 env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A worker configured by ``settings`` alone (``settings.to_env()`` over this process's
    environment; ``env`` on top), logging to ``log_path``."""
    return spawn(worker_command(), log_path,
                 env={**os.environ, **settings.to_env(), **(env or {})})


def stop_process(process: subprocess.Popen[Any], timeout_s: float = 20.0, *,
                 signum: int = signal.SIGTERM) -> None:
    """Stop a process started in a session of its own (:func:`spawn`): send ``signum``,
    give it ``timeout_s`` to exit, then SIGKILL its whole process group — which also ends
    anything it left running there — and reap it."""
    if process.poll() is None:
        process.send_signal(signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout_s)
    kill_process_group(process)


def kill_process_group(process: subprocess.Popen[Any]) -> None:
    """SIGKILL the process and its process group at once (a crash, as the tests need it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()  # also when it does not lead a process group of its own
    process.wait()


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ("" when it cannot be read)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def http_get(url: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    """GET ``url``: (status, body); (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def get_json(url: str, timeout_s: float = 2.0) -> tuple[int, Any]:
    """GET a JSON document: (status, body); (0, None) when nothing answers."""
    status, body = http_get(url, timeout_s)
    return status, orjson.loads(body) if body else None


def wait_until_ready(process: subprocess.Popen[Any], settings: Settings, log_path: Path, *,
                     timeout_s: float = 120.0, interval_s: float = 0.25,
                     tail_lines: int = 0) -> None:
    """Poll the worker's ``/readyz`` until it answers 200.

    Raises WorkerNotReadyError when the process exits first or the deadline passes; the
    message names ``log_path`` and, with ``tail_lines``, quotes its end."""
    url = f"http://{LOOPBACK}:{settings.web_port}/readyz"
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            problem = f"the worker exited ({process.returncode})"
            break
        if http_get(url)[0] == 200:
            return
        if time.monotonic() > deadline:
            problem = f"the worker was not ready within {timeout_s:.0f}s"
            break
        time.sleep(interval_s)
    tail = f":\n{log_tail(log_path, tail_lines)}" if tail_lines else ""
    raise WorkerNotReadyError(f"{problem}; see {log_path}{tail}")
