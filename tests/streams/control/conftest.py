"""Fixtures for the control-plane tests: isolated settings on the session's broker with the
topics created and a registry directory, the CLI run in-process with those settings in the
environment, and a control-topic follower running on its own thread."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devtools.broker import EmbeddedBroker
from streams.cli import main
from streams.control.follow import follow_control
from streams.control.topic import ControlSnapshot
from streams.kafka.topics import create_topics
from streams.settings import Settings
from tests.models.test_registry import write_model_dir
from tests.support import isolated_settings, wait_for


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    """This test's own topics (created) and model registry on the session's broker."""
    isolated = isolated_settings(broker.url, tmp_path, topic_partitions=1,
                                 model_registry=tmp_path / "registry")
    create_topics(isolated)
    return isolated


def use_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Make ``settings`` what ``load_settings()`` reads: exactly its STREAMREC_* variables."""
    for name in list(os.environ):
        if name.upper().startswith("STREAMREC_"):
            monkeypatch.delenv(name)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)


@dataclass
class Cli:
    """``streamrec`` run in-process by :func:`streams.cli.main`, output captured."""

    capsys: pytest.CaptureFixture[str]

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        """(exit code, stdout, stderr); a usage error's SystemExit gives its code."""
        self.capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Cli:
    use_settings(monkeypatch, settings)
    return Cli(capsys)


@pytest.fixture
def model_dirs(tmp_path: Path) -> list[Path]:
    """Three different model directories (stand-in scorers; nothing here loads them)."""
    return [write_model_dir(tmp_path / f"model-{n}", seed=n) for n in range(3)]


@dataclass
class Follower:
    """:func:`follow_control` on its own thread and event loop; ``snapshots`` in order."""

    settings: Settings
    snapshots: list[ControlSnapshot] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _task: asyncio.Task[None] | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Follower:
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._task = self._loop.create_task(follow_control(
                self.snapshots.append, self.settings.bootstrap_servers, {},
                topic=self.settings.topic_control))
            started.set()
            try:
                self._loop.run_until_complete(self._task)
            except asyncio.CancelledError:
                pass
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="control-follower", daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def wait(self, predicate: Callable[[ControlSnapshot], Any], what: str,
             timeout_s: float = 30.0) -> ControlSnapshot:
        """The newest snapshot once it satisfies ``predicate``."""
        def newest() -> ControlSnapshot | None:
            latest = self.snapshots[-1] if self.snapshots else None
            return latest if latest is not None and predicate(latest) else None

        snapshot = wait_for(newest, timeout_s, what, interval_s=0.05)
        assert snapshot is not None  # wait_for returns only something truthy
        return snapshot

    def stop(self) -> None:
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread is not None:
            self._thread.join(15)


@pytest.fixture
def follower(settings: Settings) -> Iterator[Follower]:
    running = Follower(settings).start()
    try:
        yield running
    finally:
        running.stop()
