"""JSON-lines event files in the stream's event schema, grouped into sessions
(:func:`load_event_sessions`) and split by time into a benchmark
(:meth:`EventCorpus.as_benchmark`). Event files carry no item text.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson

from models.data.benchmark import Benchmark, expand_prefixes
from models.errors import BenchmarkNotFoundError, InvalidBenchmarkError, InvalidInputError
from models.vocabulary import Vocabulary
from schemas.events import EventType

log = logging.getLogger(__name__)

EVENT_TYPES = frozenset(str(t) for t in EventType if t.names_item)
"""The interactions a training session is made of (the event contract's types that name an
item: searches are not)."""


@dataclass(frozen=True)
class EventCorpus:
    """Sessions built from an event file, chronological by session start."""

    sessions: list[list[int]]
    session_starts_ms: npt.NDArray[np.int64]  # (n_sessions,) epoch ms of each first event
    vocabulary: Vocabulary
    fingerprint: str  # sha256 of the event file's bytes
    n_events: int  # valid, de-duplicated events used
    n_invalid: int  # lines skipped because they are not valid events
    n_duplicates: int  # events skipped because their event_id was already seen
    n_searches: int = 0  # search events skipped: they name no item (not invalid)

    @property
    def n_items(self) -> int:
        return len(self.vocabulary)

    def as_benchmark(self, test_fraction: float = 0.1) -> Benchmark:
        """Split by time: the last ``test_fraction`` of sessions (by start time) are expanded
        into test cases, the earlier sessions are the training set."""
        if not 0.0 < test_fraction < 1.0:
            raise InvalidInputError(f"test_fraction must be in (0, 1), got {test_fraction}")
        n_test = math.ceil(len(self.sessions) * test_fraction)
        train = self.sessions[: len(self.sessions) - n_test]
        prefixes, targets = expand_prefixes(self.sessions[len(self.sessions) - n_test :])
        if not train or not prefixes:
            raise InvalidBenchmarkError(
                f"{len(self.sessions)} sessions give no training sessions or no test case "
                "with this test_fraction: use a larger event file or another --test-fraction"
            )
        return Benchmark(
            train_sessions=[list(s) for s in train],
            test_prefixes=prefixes,
            test_targets=targets,
            n_items=self.n_items,
            fingerprint=self.fingerprint,
            item_ids=self.vocabulary.items,
        )


@dataclass(frozen=True)
class _Event:
    user_id: str
    item_id: str
    timestamp_ms: int
    session_id: str | None


def _timestamp_ms(value: object) -> int | None:
    """Epoch ms from an int (epoch ms) or an RFC 3339 string with offset; None if invalid."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or len(value) < 20 or value[10] not in "Tt ":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:  # RFC 3339 requires an offset
        return None
    return round(parsed.timestamp() * 1000)


_SEARCH = str(EventType.SEARCH)


def _parse_event(line: bytes) -> tuple[str, str, _Event] | str | None:
    """``(event_id, event_type, event)`` of a valid event line, ``"search"`` for a search
    event (it names no item), else None."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    event_id, user, item = obj.get("event_id"), obj.get("user_id"), obj.get("item_id")
    event_type, session_id = obj.get("event_type"), obj.get("session_id")
    if event_type == _SEARCH:  # a valid search is expected in an event file, not invalid
        valid = isinstance(event_id, str) and isinstance(user, str) and event_id and user
        return _SEARCH if valid and _timestamp_ms(obj.get("timestamp")) is not None else None
    if not (isinstance(event_id, str) and isinstance(user, str) and isinstance(item, str)):
        return None
    if not (event_id and user and item):
        return None
    if event_type not in EVENT_TYPES:
        return None
    if session_id is not None and not isinstance(session_id, str):
        return None
    ts = _timestamp_ms(obj.get("timestamp"))
    if ts is None:
        return None
    return event_id, event_type, _Event(user, item, ts, session_id or None)


def load_event_sessions(
    path: Path,
    session_gap_s: float = 1800,
    event_types: frozenset[str] = EVENT_TYPES,
) -> EventCorpus:
    """Group the events of a JSON-lines file into sessions.

    Each line is an event (``event_id``, ``event_type`` in view|click|add_to_cart|purchase,
    ``user_id``, ``item_id``, ``timestamp`` as RFC 3339 with offset or int epoch ms, optional
    ``session_id``). Search events name no item: they are expected, skipped and counted
    apart (``n_searches``, logged at info). Lines that are not valid events are skipped and
    counted (one warning), events whose type is not in ``event_types`` are ignored, and a
    repeated ``event_id`` is skipped as a duplicate delivery. Each user's events are ordered by
    time (file order breaks ties) and a new session starts when ``session_id`` changes (absent
    counts as a value) or after more than ``session_gap_s`` seconds without events. Sessions
    are ordered by start time; the vocabulary numbers items ``1..N`` in order of first
    appearance in that order.
    """
    path = Path(path)
    if not path.is_file():
        raise BenchmarkNotFoundError(f"event file {path} not found")
    digest = hashlib.sha256()
    seen_ids: set[str] = set()
    per_user: dict[str, list[_Event]] = {}
    n_invalid = n_duplicates = n_searches = 0
    with path.open("rb") as handle:
        for line in handle:
            digest.update(line)
            if not line.strip():
                continue
            parsed = _parse_event(line)
            if parsed == _SEARCH:
                n_searches += 1
                continue
            if not isinstance(parsed, tuple):
                n_invalid += 1
                continue
            event_id, event_type, event = parsed
            if event_type not in event_types:
                continue
            if event_id in seen_ids:
                n_duplicates += 1
                continue
            seen_ids.add(event_id)
            per_user.setdefault(event.user_id, []).append(event)
    if n_searches:
        log.info("%s: %d searches skipped: training sessions are item interactions",
                 path, n_searches)
    if n_invalid:
        log.warning("%s: skipped %d lines that are not valid events", path, n_invalid)
    gap_ms = session_gap_s * 1000
    raw_sessions: list[tuple[int, int, list[str]]] = []  # (start ms, creation order, items)
    for events in per_user.values():
        events.sort(key=lambda e: e.timestamp_ms)  # stable: file order breaks ties
        prev: _Event | None = None
        for event in events:
            if (
                prev is None
                or event.session_id != prev.session_id
                or event.timestamp_ms - prev.timestamp_ms > gap_ms
            ):
                raw_sessions.append((event.timestamp_ms, len(raw_sessions), []))
            raw_sessions[-1][2].append(event.item_id)
            prev = event
    raw_sessions.sort(key=lambda s: (s[0], s[1]))
    vocab_index: dict[str, int] = {}
    sessions = []
    for _, _, items in raw_sessions:
        sessions.append([vocab_index.setdefault(item, len(vocab_index) + 1) for item in items])
    return EventCorpus(
        sessions=sessions,
        session_starts_ms=np.asarray([s[0] for s in raw_sessions], dtype=np.int64),
        vocabulary=Vocabulary(tuple(vocab_index)),
        fingerprint=digest.hexdigest(),
        n_events=sum(len(s) for s in sessions),
        n_invalid=n_invalid,
        n_duplicates=n_duplicates,
        n_searches=n_searches,
    )
