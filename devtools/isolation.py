"""Settings for one run of a tool or a test, so runs never share state by accident.

:func:`run_settings` gives a run its own data directory and a free web port on loopback;
:func:`isolated_settings` also its own app id (consumer group, internal topics) and topics,
so any number of runs can share one broker without seeing each other's messages.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from devtools.processes import LOOPBACK, free_port
from streams.settings import Settings, load_settings

TOPIC_FIELDS = tuple(name for name, info in Settings.model_fields.items()
                     if name.startswith("topic_") and info.annotation is str)
"""The settings that name a topic (``topic_views`` ... ``topic_user_erasure``)."""


def new_tag() -> str:
    """A short random tag for :func:`isolated_settings`."""
    return uuid.uuid4().hex[:8]


def run_settings(broker_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings (environment, then ``overrides``) with this run's ``data_dir`` and a free
    web port on loopback; topic names and app id stay as configured."""
    values: dict[str, Any] = dict(broker_url=broker_url, data_dir=data_dir,
                                  web_host=LOOPBACK, web_port=free_port())
    values.update(overrides)
    return load_settings(**values)


def isolated_settings(broker_url: str, data_dir: Path, tag: str, **overrides: Any
                      ) -> Settings:
    """:func:`run_settings` with the app id ``streamrec-<tag>`` and every topic named
    ``<tag>.<default name>`` (``<tag>.views``, ``<tag>.streamrec.dlq``, ...)."""
    names: dict[str, Any] = {name: f"{tag}.{Settings.model_fields[name].default}"
                             for name in TOPIC_FIELDS}
    return run_settings(broker_url, data_dir,
                        **{"app_id": f"streamrec-{tag}", **names, **overrides})
