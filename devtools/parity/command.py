"""The parity run: data → model → broker, topics and one real worker → lock-step replay →
offline rankings → comparison → table and JSON. Everything it starts it stops again.

The worker is configured so that its lists are the model's alone, comparable with offline
ranking: no catalogue is published (no content retrieval, no catalogue filter),
``content_slots`` 0, exact model retrieval, no rules, no search steering, no diversity,
``top_k`` = k, the model on CPU (as offline), and an environment holding only this run's
``STREAMREC_*`` settings (so nothing set in the caller's shell changes the worker).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from devtools.broker import start_broker
from devtools.isolation import isolated_settings, new_tag
from devtools.parity.compare import ParityReport, compare, render
from devtools.parity.dataset import (
    TEST_PATTERN,
    TRAIN_PATTERN,
    Session,
    read_sessions,
    replayable,
    write_events,
)
from devtools.parity.offline import (
    CaseKey,
    Ranked,
    WorkerRules,
    protocol_rankings,
    worker_rankings,
)
from devtools.parity.replay import ReplayResult, replay
from devtools.processes import spawn, stop_process, streamrec_command, wait_until_ready
from streams.errors import StreamrecError
from streams.kafka.topics import create_topics
from streams.settings import ENV_PREFIX, Settings

K = 20


class ParityRunError(StreamrecError):
    """A step of the parity run failed (training, the worker): the message says which; rerun
    with ``--keep-workdir`` and read the log it names."""


@dataclass(frozen=True)
class ParityOptions:
    """What ``python -m devtools.parity`` was asked to do."""

    data_dir: Path
    out: Path
    sessions: int | None = 1000
    """Test sessions replayed (the first ones of the test file with two clicks or more);
    None: all."""
    model: Path | None = None
    """A model directory to use; None: train one on the train file."""
    epochs: int = 2
    concurrency: int = 200
    exclude_recent: bool = False
    gap_s: float = 1800.0
    """The evaluation protocol's session gap (``streamrec evaluate --session-gap-s``)."""
    case_timeout_s: float = 60.0
    workdir: Path | None = None
    keep_workdir: bool = False
    broker_url: str | None = None


def worker_settings(broker_url: str, data_dir: Path, model: Path, *, exclude_recent: bool,
                    **overrides: Any) -> Settings:
    """Isolated worker settings whose lists are the model's ranking alone (module doc)."""
    values: dict[str, Any] = dict(
        model_dir=model, model_registry=None, model_retrieval="exact", model_device="cpu",
        content_slots=0, top_k=K, exclude_recent=exclude_recent,
        exclude_purchased_days=None, rules="[]", search_boost=0.0, diversity_lambda=0.0,
        category_cap=None, pseudonymisation_key=None, explain=True)
    values.update(overrides)
    return isolated_settings(broker_url, data_dir, new_tag(), **values)


def worker_env(settings: Settings) -> dict[str, str]:
    """This process's environment without any ``STREAMREC_*`` variable, plus ``settings``."""
    env = {key: value for key, value in os.environ.items()
           if not key.upper().startswith(ENV_PREFIX)}
    return {**env, **settings.to_env()}


def train_model(data_dir: Path, work: Path, epochs: int, say: Callable[[str], None]) -> Path:
    """``streamrec train --events`` on the train file, as events of the replay's schema."""
    events = work / "train-events.jsonl"
    count = write_events(events, read_sessions(data_dir, TRAIN_PATTERN))
    out = work / "model"
    command = streamrec_command("train", "--events", str(events), "--out", str(out),
                                "--epochs", str(epochs), "--no-progress")
    say(f"training on {count} clicks: {' '.join(command[1:])}")
    log = work / "train.log"
    with log.open("wb") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise ParityRunError(f"streamrec train failed ({result.returncode}); see {log}")
    return out


def run_parity(options: ParityOptions, say: Callable[[str], None] = print) -> ParityReport:
    """Run the whole check and write ``parity.json`` and ``cases.jsonl`` to ``options.out``."""
    with ExitStack() as stack:
        report = _run(options, say, stack)
    return report


def _run(options: ParityOptions, say: Callable[[str], None], stack: ExitStack
         ) -> ParityReport:
    work = (options.workdir or Path(tempfile.mkdtemp(prefix="streamrec-parity-"))
            ).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not options.keep_workdir and options.workdir is None:
        stack.callback(shutil.rmtree, work, True)
    sessions = replayable(read_sessions(options.data_dir, TEST_PATTERN), options.sessions)
    n_cases = sum(len(s.clicks) - 1 for s in sessions)
    say(f"{len(sessions)} test sessions, {n_cases} cases; work directory {work}")
    model = (options.model.resolve() if options.model is not None
             else train_model(options.data_dir, work, options.epochs, say))

    broker_url = options.broker_url
    if broker_url is None:
        broker = start_broker()
        stack.callback(broker.stop)
        broker_url = broker.url
    settings = worker_settings(broker_url, work / "state", model,
                               exclude_recent=options.exclude_recent)
    create_topics(settings)
    log_path = work / "worker.log"
    worker = spawn(streamrec_command("worker"), log_path, env=worker_env(settings))
    stack.callback(stop_process, worker, 20.0)
    wait_until_ready(worker, settings, log_path, timeout_s=180.0, tail_lines=30)
    say(f"worker ready (model {model}); replaying, {options.concurrency} sessions at once")
    live = replay(settings, sessions, concurrency=options.concurrency,
                  case_timeout_s=options.case_timeout_s,
                  progress=lambda done, total: say(f"  {done}/{total} cases"))
    stop_process(worker, 20.0)
    say(f"replayed {live.events_sent} events in {live.seconds:.1f} s; scoring offline")

    rules = WorkerRules.from_settings(settings)
    offline = worker_rankings(sessions, model, rules, K)
    train = read_sessions(options.data_dir, TRAIN_PATTERN)
    protocol = protocol_rankings(sessions, train, model, K, options.gap_s)
    report = compare(sessions, live.cases, offline, protocol, rules, K, options.gap_s)
    report.context.update(_context(options, sessions, model, live, protocol.n_sessions,
                                   settings))
    _write(options.out, report, sessions, live, offline, protocol.cases)
    say(render(report))
    say(f"written: {options.out / 'parity.json'}, {options.out / 'cases.jsonl'}")
    return report


def _context(options: ParityOptions, sessions: list[Session], model: Path,
             live: ReplayResult, protocol_sessions: int, settings: Settings
             ) -> dict[str, Any]:
    latencies = sorted(case.seconds for case in live.cases.values())
    return {
        "data_dir": str(options.data_dir), "sessions": len(sessions), "model": str(model),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "protocol_sessions_after_gap_split": protocol_sessions,
        "protocol_session_gap_s": options.gap_s,
        "worker": {"exclude_recent": settings.exclude_recent,
                   "max_sequence_len": settings.max_sequence_len,
                   "content_slots": settings.content_slots,
                   "model_retrieval": settings.model_retrieval, "top_k": settings.top_k,
                   "topic_partitions": settings.topic_partitions},
        "replay": {"events_sent": live.events_sent, "seconds": round(live.seconds, 1),
                   "concurrency": options.concurrency,
                   "unexpected_recommendations": live.unexpected,
                   "round_trip_p50_s": latencies[len(latencies) // 2] if latencies else None,
                   "round_trip_p99_s": (latencies[min(len(latencies) - 1,
                                                      len(latencies) * 99 // 100)]
                                        if latencies else None)},
    }


def _write(out: Path, report: ParityReport, sessions: list[Session], live: ReplayResult,
           offline: Mapping[CaseKey, Ranked], protocol: Mapping[CaseKey, Ranked]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "parity.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    with (out / "cases.jsonl").open("wb") as handle:
        for session in sessions:
            for n in range(len(session.clicks) - 1):
                key = CaseKey(session.session_id, n)
                theirs = protocol.get(key)
                handle.write(orjson.dumps({
                    "session_id": session.session_id, "k": n,
                    "target": session.items[n + 1],
                    "live": list(live.cases[key].items), "live_rank": live.cases[key].rank,
                    "live_fallback": live.cases[key].fallback,
                    "offline": list(offline[key].items), "offline_rank": offline[key].rank,
                    "protocol": None if theirs is None else list(theirs.items),
                    "protocol_rank": None if theirs is None else theirs.rank,
                }) + b"\n")
