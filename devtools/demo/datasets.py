"""Real click streams replayed as events (formats of ``shared/data/README.md``).

Never bundled: the caller passes the directory. Every click becomes a ``view`` event; the
user is the session's visitor (YooChoose has no user ids, so a session is a user there).
Amazon Scientific (``scientific``) also has a catalogue: each item's title, category and
brand text; its users' review sequences carry no times, so each user's events are spread a
minute apart from a start drawn over a week (seeded).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from streams.errors import StreamrecError

DATASETS = ("yoochoose", "retailrocket", "scientific")
SCIENTIFIC_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


class DatasetNotFoundError(StreamrecError):
    """The dataset files were not found under --data-dir: pass the folder that holds them
    (e.g. ../shared/data/yoochoose_100k or ../shared/data/retailrocket_sample)."""


def load_dataset(name: str, data_dir: Path) -> list[dict[str, Any]]:
    """Events of a real dataset, sorted by time."""
    if name == "yoochoose":
        events = _yoochoose(data_dir)
    elif name == "retailrocket":
        events = _retailrocket(data_dir)
    elif name == "scientific":
        events = _scientific(data_dir)
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


def load_catalog(name: str, data_dir: Path) -> list[dict[str, Any]]:
    """The dataset's item records (schemas/item.schema.json); empty when it has none."""
    if name != "scientific":
        return []
    records = []
    for item, text in _scientific_texts(data_dir).items():
        parts = [part.strip() for part in text.split(". ")]
        record: dict[str, Any] = {"item_id": item, "title": parts[0][:1000] or item}
        if len(parts) > 1 and parts[1]:
            record["category"] = [parts[1][:256]]
        if len(parts) > 2 and parts[2].strip(". "):
            record["brand"] = parts[2].strip(". ")[:256]
        records.append(record)
    return records


def _scientific_texts(data_dir: Path) -> dict[str, str]:
    (path,) = _find(data_dir, "*.text")
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


def _scientific(data_dir: Path) -> list[dict[str, Any]]:
    import random

    (index_file,) = _find(data_dir, "*.item2index")
    asin = {int(i): a for a, i in (line.split("\t") for line in
                                   index_file.read_text().splitlines() if "\t" in line)}
    (sequences,) = _find(data_dir, "*.test.inter")
    rng = random.Random(7)
    events = []
    for line in sequences.read_text().splitlines()[1:]:
        user, history, target = line.split("\t")
        start = SCIENTIFIC_START_MS + rng.randrange(7 * 86_400_000)
        for n, item in enumerate([*history.split(), target]):
            events.append(_view(f"sci-{user}-{n}", f"sci-{user}", asin[int(item)],
                                (start + n * 60_000) / 1000, f"sci-{user}"))
    return events
