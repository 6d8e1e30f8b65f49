"""The tools' shared process and settings helpers (no broker needed)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from devtools.errors import WorkerNotReadyError
from devtools.isolation import TOPIC_FIELDS, isolated_settings, run_settings
from devtools.processes import (
    free_port,
    kill_process_group,
    log_tail,
    spawn,
    stop_process,
    wait_until_ready,
)
from streams.settings import load_settings

# A parent that ignores SIGTERM and leaves a child (same process group) running.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def child_pid(log: Path) -> int:
    deadline = time.monotonic() + 30
    while not log.read_text().strip():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    return int(log.read_text().split()[0])


def test_stop_kills_a_stubborn_process_and_what_it_left_in_its_group(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    process = spawn([sys.executable, "-c", STUBBORN], log)
    child = child_pid(log)

    stop_process(process, timeout_s=0.5)

    assert process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, "the child outlived its stopped parent"
        time.sleep(0.05)


def test_a_process_that_obeys_sigterm_exits_by_it(tmp_path: Path) -> None:
    process = spawn([sys.executable, "-c", "import time; time.sleep(600)"], tmp_path / "log")
    stop_process(process, timeout_s=30)
    assert process.returncode == -signal.SIGTERM
    stop_process(process)  # stopping twice is harmless


def test_kill_is_immediate(tmp_path: Path) -> None:
    process = spawn([sys.executable, "-c", STUBBORN], tmp_path / "log")
    kill_process_group(process)
    assert process.returncode == -signal.SIGKILL


def test_waiting_for_a_worker_that_exits_names_its_log(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    process = spawn([sys.executable, "-c", "print('boom'); raise SystemExit(3)"], log)
    settings = load_settings(web_port=free_port())
    with pytest.raises(WorkerNotReadyError, match=r"exited \(3\); see .*worker.log:\nboom"):
        wait_until_ready(process, settings, log, timeout_s=30, interval_s=0.05,
                         tail_lines=5)
    assert log_tail(log) == "boom"


def test_isolated_settings_prefix_every_topic_and_the_app_id(tmp_path: Path) -> None:
    one = isolated_settings("kafka://localhost:9092", tmp_path / "a", "t1", top_k=3)
    two = isolated_settings("kafka://localhost:9092", tmp_path / "b", "t2")
    assert one.app_id == "streamrec-t1" and one.top_k == 3
    assert one.topic_views == "t1.views" and one.topic_dead_letter == "t1.streamrec.dlq"
    names = [getattr(s, name) for s in (one, two) for name in TOPIC_FIELDS]
    assert len(set(names)) == len(names) == 2 * len(TOPIC_FIELDS)
    assert one.web_host == "127.0.0.1" and one.data_dir == tmp_path / "a"


def test_run_settings_keep_the_configured_topics(tmp_path: Path) -> None:
    settings = run_settings("kafka://localhost:9092", tmp_path, app_id="streamrec-soak")
    assert settings.topic_views == load_settings().topic_views
    assert settings.app_id == "streamrec-soak" and settings.web_port > 0
