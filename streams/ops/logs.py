"""Log configuration: plain text or one JSON object per line.

Raw user ids never appear at INFO or above: the worker logs event ids, partitions and
reason codes; the DEBUG batch line carries only counts.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, plus ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document for the worker (Faust applies it)."""
    formatter = (
        {"()": f"{__name__}.JsonFormatter"}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "default"}
        },
        "root": {"level": level, "handlers": ["console"]},
        "loggers": {
            # Faust and aiokafka are chatty at INFO; keep them at WARNING unless debugging.
            "faust": {"level": "WARNING" if level != "DEBUG" else "DEBUG"},
            "aiokafka": {"level": "WARNING"},
            "mode": {"level": "WARNING" if level != "DEBUG" else "DEBUG"},
        },
    }


def configure_logging(level: str, fmt: str) -> None:
    """Apply :func:`logging_config` to this process (for commands other than the worker)."""
    import logging.config

    logging.config.dictConfig(logging_config(level, fmt))
