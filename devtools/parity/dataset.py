"""YooChoose clicks as prepared by session-rec (``SessionId<TAB>ItemId<TAB>Time``, Unix
seconds), read into sessions, and written as event files in the stream's event schema.

The same mapping serves training (``streamrec train --events``), the live replay and the
evaluation protocol, so item ids and sessions are identical on every side: a click is a
``view`` of ``ItemId`` by the user ``s<SessionId>`` (YooChoose has no users: one user per
session) in the session ``<SessionId>``, with a unique event id ``yc-<SessionId>-<n>`` (the
dataset repeats clicks of one item within a session; the worker deduplicates by event id
only, so each click must have its own id).

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "yoochoose-clicks-x_test.txt").write_text(
...     "SessionId\\tItemId\\tTime\\n7\\t11\\t2.5\\n7\\t12\\t1.0\\n")
>>> [(c.item_id, c.time_ms) for c in read_sessions(folder, TEST_PATTERN)[0].clicks]
[('12', 1000), ('11', 2500)]
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streams.errors import StreamrecError

TRAIN_PATTERN = "yoochoose-clicks*_train_full.txt"
TEST_PATTERN = "yoochoose-clicks*_test.txt"
EVENT_TYPE = "view"


class ParityDataError(StreamrecError):
    """The YooChoose files were not found or are not in the session-rec format: pass
    ``--data-dir`` pointing at the folder holding ``yoochoose-clicks-*_train_full.txt`` and
    ``yoochoose-clicks-*_test.txt`` (e.g. ../shared/data/yoochoose_100k)."""


@dataclass(frozen=True, slots=True)
class Click:
    """One click of a session: its position in the session (time order), item, time."""

    position: int
    item_id: str
    time_ms: int


@dataclass(frozen=True, slots=True)
class Session:
    """One dataset session, its clicks in time order (file order breaks ties, as
    ``models.data.load_event_sessions`` orders them)."""

    session_id: str
    clicks: tuple[Click, ...]

    @property
    def user_id(self) -> str:
        return user_of(self.session_id)

    @property
    def items(self) -> list[str]:
        return [click.item_id for click in self.clicks]

    def event_id(self, position: int) -> str:
        return f"yc-{self.session_id}-{position}"

    def event(self, position: int, timestamp_ms: int | None = None) -> dict[str, Any]:
        """Click ``position`` as an event; ``timestamp_ms`` re-stamps it (default: the
        dataset's own time)."""
        click = self.clicks[position]
        return {
            "event_id": self.event_id(position),
            "event_type": EVENT_TYPE,
            "user_id": self.user_id,
            "item_id": click.item_id,
            "timestamp": click.time_ms if timestamp_ms is None else timestamp_ms,
            "session_id": self.session_id,
        }


def user_of(session_id: str) -> str:
    """The user a dataset session is replayed as (one user per session)."""
    return f"s{session_id}"


def find_file(data_dir: Path, pattern: str) -> Path:
    """The one file of ``data_dir`` matching ``pattern``."""
    found = sorted(Path(data_dir).glob(pattern))
    if len(found) != 1:
        raise ParityDataError(f"expected one file matching {pattern!r} in {data_dir}, "
                              f"found {len(found)}")
    return found[0]


def read_sessions(data_dir: Path, pattern: str) -> list[Session]:
    """The sessions of the file matching ``pattern``, in order of first appearance."""
    path = find_file(data_dir, pattern)
    rows: dict[str, list[tuple[int, int, str]]] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if reader.fieldnames is None or not {"SessionId", "ItemId", "Time"} <= set(
                reader.fieldnames):
            raise ParityDataError(f"{path}: expected the columns SessionId, ItemId, Time")
        for line, row in enumerate(reader):
            rows.setdefault(row["SessionId"], []).append(
                (round(float(row["Time"]) * 1000), line, row["ItemId"]))
    sessions = []
    for session_id, clicks in rows.items():
        clicks.sort()  # time, then file order
        sessions.append(Session(session_id, tuple(
            Click(n, item, time_ms) for n, (time_ms, _line, item) in enumerate(clicks))))
    return sessions


def write_events(path: Path, sessions: Iterable[Session]) -> int:
    """Every click of ``sessions`` as a JSON-lines event file (dataset times); returns the
    number of events written."""
    count = 0
    with Path(path).open("wb") as handle:
        for session in sessions:
            for position in range(len(session.clicks)):
                handle.write(orjson.dumps(session.event(position)) + b"\n")
                count += 1
    return count


def replayable(sessions: Sequence[Session], limit: int | None) -> list[Session]:
    """The first ``limit`` sessions (all when None) with at least two clicks (one case)."""
    usable = [session for session in sessions if len(session.clicks) >= 2]
    return usable if limit is None else usable[:limit]
