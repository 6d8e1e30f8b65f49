"""Logs: one JSON object per line on request, and no raw user id at INFO or above.

The worker-level check (a real worker with ``STREAMREC_LOG_FORMAT=json`` at DEBUG, its log
file parsed line by line) is in ``tests/integration/test_prometheus_scrape.py``.
"""

from __future__ import annotations

import asyncio
import io
import logging
import logging.config
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from schemas.events import DEFAULT_LIMITS
from streams.ingest.agent import IngestAgent, IngestConfig
from streams.ingest.batch import RawMessage, ingest
from streams.ops.logs import JsonFormatter, logging_config
from streams.ops.metrics import create_metrics

USERS = ("alice-7f3a", "bob-91c2")


@pytest.fixture
def json_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("streamrec.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_carries_time_level_logger_message_and_extra_fields(
    json_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_logger
    logger.warning("dead-lettered %s", "message", extra={"event_id": "e-1", "partition": 3,
                                                          "reason": "invalid_json"})
    (line,) = lines(stream)
    assert line["level"] == "WARNING"
    assert line["logger"] == "streamrec.test.json"
    assert line["message"] == "dead-lettered message"
    assert (line["event_id"], line["partition"], line["reason"]) == ("e-1", 3, "invalid_json")
    assert time.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    # Nothing of LogRecord's own bookkeeping leaks in.
    assert not {"args", "msg", "levelno", "pathname", "created"} & line.keys()


def test_exceptions_and_odd_values_stay_on_one_parseable_line(
    json_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_logger
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logger.exception("failed on %s", "a batch", extra={"where": object(), "raw": b"\xff"})
    assert len(stream.getvalue().splitlines()) == 1
    (line,) = lines(stream)
    assert line["level"] == "ERROR"
    assert "ValueError: bad\nthing" in line["exception"]
    assert line["where"].startswith("<object object")


def test_logging_config_builds_the_json_formatter_and_quiets_libraries() -> None:
    config = logging_config("INFO", "json")
    factory = logging.config.BaseConfigurator({}).resolve(config["formatters"]["default"]["()"])
    assert factory is JsonFormatter
    assert config["root"]["level"] == "INFO"
    assert {name: c["level"] for name, c in config["loggers"].items()} == {
        "faust": "WARNING", "aiokafka": "WARNING", "mode": "WARNING"}
    assert logging_config("DEBUG", "json")["loggers"]["faust"]["level"] == "DEBUG"
    assert "()" not in logging_config("INFO", "text")["formatters"]["default"]


# --- The ingest agent's logging, driven through its real code path ----------------------------


@dataclass
class RecordingTopic:
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


def valid_event(n: int, user: str, now_ms: int) -> bytes:
    return orjson.dumps({"event_id": f"ok-{n}", "event_type": "view", "user_id": user,
                         "item_id": f"item-{n}", "timestamp": now_ms - 1000})


def run_ingest_agent(values: list[bytes], caplog: pytest.LogCaptureFixture
                     ) -> list[logging.LogRecord]:
    now_ms = int(time.time() * 1000)
    messages = [RawMessage("views", 0, offset, now_ms, None, value)
                for offset, value in enumerate(values)]
    batch = ingest(messages, limits=DEFAULT_LIMITS, partitions=4, now_ms=now_ms)
    config = IngestConfig(DEFAULT_LIMITS, partitions=4, erasure_topic="user_erasure",
                          items_topic="items",
                          batch_max_events=100, batch_max_seconds=0.01, pseudonymiser=None)
    agent = IngestAgent(config, create_metrics(CollectorRegistry()), RecordingTopic(),
                        RecordingTopic())
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        asyncio.run(agent._send(batch))
    return list(caplog.records)


def test_rejected_events_are_warnings_with_event_id_and_reason_and_no_user_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now_ms = int(time.time() * 1000)
    values = [valid_event(n, USERS[n % 2], now_ms) for n in range(6)]
    values.append(orjson.dumps({"event_id": "bad-type-1", "event_type": "teleport",
                                "user_id": USERS[0], "item_id": "i", "timestamp": now_ms}))
    values.append(b"{not json")
    records = run_ingest_agent(values, caplog)

    formatted = [orjson.loads(JsonFormatter().format(r)) for r in records]
    warnings = [line for line in formatted if line["level"] == "WARNING"]
    assert len(warnings) == 2, formatted
    assert "event_id=bad-type-1" in warnings[0]["message"]
    assert "reason=unknown_event_type" in warnings[0]["message"]
    assert "reason=invalid_json" in warnings[1]["message"]
    for record in records:
        if record.levelno >= logging.INFO:
            text = JsonFormatter().format(record)
            assert not [user for user in USERS if user in text], text


def test_a_malformed_user_id_is_not_logged_at_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now_ms = int(time.time() * 1000)
    leaky = orjson.dumps({"event_id": "bad-user-1", "event_type": "view",
                          "user_id": "carol-55d1\x07", "item_id": "i", "timestamp": now_ms})
    records = run_ingest_agent([leaky], caplog)
    (warning,) = [r for r in records if r.levelno >= logging.INFO]
    assert "reason=invalid_id" in warning.getMessage()
    assert "carol-55d1" not in warning.getMessage()


def test_the_json_formatter_is_importable_by_name_from_a_fresh_interpreter() -> None:
    """Faust applies the config in the worker process: the dotted path must resolve there."""
    import subprocess

    code = (
        "import logging, logging.config, streams.ops.logs as l;"
        "logging.config.dictConfig(l.logging_config('INFO', 'json'));"
        "logging.getLogger('streamrec.x').info('hello', extra={'partition': 1})"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=30)
    line = orjson.loads(result.stderr.strip())
    assert (line["message"], line["partition"], line["level"]) == ("hello", 1, "INFO")
