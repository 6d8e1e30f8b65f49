"""Real click streams replayed as events (formats of ``shared/data/README.md``).

Never bundled: the caller passes the directory. Every click becomes a ``view`` event; the
user is the session's visitor (YooChoose has no user ids, so a session is a user there).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from streams.errors import StreamrecError

DATASETS = ("yoochoose", "retailrocket")


class DatasetNotFoundError(StreamrecError):
    """The dataset files were not found under --data-dir: pass the folder that holds them
    (e.g. ../shared/data/yoochoose_100k or ../shared/data/retailrocket_sample)."""


def load_dataset(name: str, data_dir: Path) -> list[dict[str, Any]]:
    """Events of a real dataset, sorted by time."""
    if name == "yoochoose":
        events = _yoochoose(data_dir)
    elif name == "retailrocket":
        events = _retailrocket(data_dir)
    else:
        raise DatasetNotFoundError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    events.sort(key=lambda e: (e["timestamp"], e["event_id"]))
    return events


def _find(data_dir: Path, pattern: str) -> list[Path]:
    files = sorted(data_dir.glob(pattern))
    if not files:
        raise DatasetNotFoundError(f"no file matching {pattern!r} in {data_dir}")
    return files


def _yoochoose(data_dir: Path) -> list[dict[str, Any]]:
    events = []
    for path in _find(data_dir, "yoochoose-clicks*.txt"):
        with path.open(newline="") as handle:
            for n, row in enumerate(csv.DictReader(handle, delimiter="\t")):
                events.append(_view(f"{path.stem}-{n}", f"yc-{row['SessionId']}",
                                    row["ItemId"], float(row["Time"]),
                                    f"yc-{row['SessionId']}"))
    return events


def _retailrocket(data_dir: Path) -> list[dict[str, Any]]:
    events = []
    for path in _find(data_dir, "*retailrocket*.csv"):
        with path.open(newline="") as handle:
            for n, row in enumerate(csv.DictReader(handle, delimiter="\t")):
                events.append(_view(f"{path.stem}-{n}", f"rr-{row['user_id']}",
                                    row["item_id"], float(row["timestamp"]),
                                    f"rr-{row['session_id']}"))
    return events


def _view(event_id: str, user: str, item: str, seconds: float, session: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "view",
        "user_id": user,
        "item_id": str(item),
        "timestamp": int(seconds * 1000),
        "session_id": session,
    }
