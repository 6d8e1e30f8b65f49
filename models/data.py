"""Offline data: benchmark files, event files and validation splits.

Two sources feed offline training and evaluation:

* a **benchmark directory** in the Diginetica format (``train_sessions.txt``: one session per
  line, space-separated item indices; ``test.tsv``: ``prefix<TAB>target``), read by
  :func:`load_benchmark`;
* a **JSON-lines event file** in the stream's event schema, grouped into sessions by
  :func:`load_event_sessions` and split by time with :meth:`EventCorpus.as_benchmark`.

Item indices are dense ``1..n_items``; ``0`` is padding and out-of-vocabulary
(see ``docs/contracts.md``); :class:`~models.vocabulary.Vocabulary` maps external ids to them.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson

from models.errors import BenchmarkNotFoundError, InvalidBenchmarkError, InvalidInputError
from models.vocabulary import Vocabulary

log = logging.getLogger(__name__)

TRAIN_FILE = "train_sessions.txt"
TEST_FILE = "test.tsv"
EVENT_TYPES = frozenset({"view", "click", "add_to_cart", "purchase"})


# --------------------------------------------------------------------------- benchmarks
@dataclass(frozen=True)
class Benchmark:
    """Training sessions plus next-item test cases, all as item indices ``1..n_items``."""

    train_sessions: list[list[int]]
    test_prefixes: list[list[int]]
    test_targets: npt.NDArray[np.int64]  # (n_cases,)
    n_items: int
    fingerprint: str  # sha256 of the training data's bytes
    item_ids: tuple[str, ...] | None = None  # external ids of 1..n_items; None = identity

    @property
    def vocabulary(self) -> Vocabulary:
        if self.item_ids is None:
            return Vocabulary.identity(self.n_items)
        return Vocabulary(self.item_ids)


def _parse_ids(text: str, where: str) -> list[int]:
    try:
        ids = [int(tok) for tok in text.split()]
    except ValueError as exc:
        raise InvalidBenchmarkError(f"{where}: item ids must be integers ({exc})") from exc
    if ids and min(ids) < 1:
        raise InvalidBenchmarkError(f"{where}: item ids must be >= 1 (0 is reserved)")
    return ids


def load_benchmark(directory: Path) -> Benchmark:
    """Load ``train_sessions.txt`` and ``test.tsv`` from a benchmark directory.

    ``n_items`` is the largest item id in either file; the fingerprint is the sha256 of the
    training file's bytes. Blank lines are ignored.
    """
    directory = Path(directory)
    train_path, test_path = directory / TRAIN_FILE, directory / TEST_FILE
    for path in (train_path, test_path):
        if not path.is_file():
            raise BenchmarkNotFoundError(
                f"{path} not found: a benchmark directory holds {TRAIN_FILE} and {TEST_FILE}"
            )
    raw = train_path.read_bytes()
    fingerprint = hashlib.sha256(raw).hexdigest()
    train: list[list[int]] = []
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        ids = _parse_ids(line, f"{train_path}:{lineno}")
        if ids:
            train.append(ids)
    prefixes: list[list[int]] = []
    targets: list[int] = []
    for lineno, line in enumerate(test_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{test_path}:{lineno}"
        prefix_text, sep, target_text = line.partition("\t")
        target = _parse_ids(target_text, where)
        prefix = _parse_ids(prefix_text, where)
        if not sep or len(target) != 1 or not prefix:
            raise InvalidBenchmarkError(f"{where}: expected 'prefix<TAB>target'")
        prefixes.append(prefix)
        targets.append(target[0])
    if not train or not prefixes:
        raise InvalidBenchmarkError(f"{directory}: training or test file has no data")
    n_items = max(
        max(max(s) for s in train), max(max(p) for p in prefixes), max(targets)
    )
    return Benchmark(
        train_sessions=train,
        test_prefixes=prefixes,
        test_targets=np.asarray(targets, dtype=np.int64),
        n_items=n_items,
        fingerprint=fingerprint,
    )


def expand_prefixes(
    sessions: Iterable[Sequence[int]],
) -> tuple[list[list[int]], npt.NDArray[np.int64]]:
    """Every (prefix of length >= 1, next item) case of every session, in session order.

    >>> p, t = expand_prefixes([[1, 2, 3], [4]])
    >>> p, t.tolist()
    ([[1], [1, 2]], [2, 3])
    """
    prefixes: list[list[int]] = []
    targets: list[int] = []
    for session in sessions:
        items = list(session)
        for end in range(1, len(items)):
            prefixes.append(items[:end])
            targets.append(items[end])
    return prefixes, np.asarray(targets, dtype=np.int64)


def split_validation(
    sessions: Sequence[Sequence[int]],
    fraction: float = 0.1,
    seed: int = 0,
    max_cases: int | None = None,
) -> tuple[list[list[int]], list[list[int]], npt.NDArray[np.int64]]:
    """Carve a validation set out of *training* sessions, mimicking the test protocol.

    Sessions are assumed chronological (the last lines of a benchmark's training file are the
    most recent), so the last ``fraction`` of them become validation sessions and the rest
    stay for training. As in the Diginetica test preprocessing, items a validation session
    shares with no training session are dropped from it, validation sessions left with fewer
    than two items are discarded, and each remaining session is expanded into all its
    (prefix, next item) cases (:func:`expand_prefixes`). When ``max_cases`` is set, that many
    cases are sampled without replacement using ``seed`` (order preserved); otherwise
    ``seed`` is unused and the split is fully deterministic.

    Returns ``(train_sessions, valid_prefixes, valid_targets)``.
    """
    if not 0.0 < fraction < 1.0:
        raise InvalidInputError(f"fraction must be in (0, 1), got {fraction}")
    n_valid = max(1, int(round(len(sessions) * fraction)))
    if n_valid >= len(sessions):
        raise InvalidInputError(f"{len(sessions)} sessions are too few to split off validation")
    train = [list(s) for s in sessions[: len(sessions) - n_valid]]
    seen = {item for s in train for item in s}
    valid = [[i for i in s if i in seen] for s in sessions[len(sessions) - n_valid :]]
    prefixes, targets = expand_prefixes(s for s in valid if len(s) >= 2)
    if max_cases is not None and len(prefixes) > max_cases:
        keep = np.sort(np.random.default_rng(seed).choice(len(prefixes), max_cases, False))
        prefixes = [prefixes[i] for i in keep]
        targets = targets[keep]
    return train, prefixes, targets


# --------------------------------------------------------------------------- event files
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


def _parse_event(line: bytes) -> tuple[str, str, _Event] | None:
    """``(event_id, event_type, event)`` of a valid event line, else None."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    event_id, user, item = obj.get("event_id"), obj.get("user_id"), obj.get("item_id")
    event_type, session_id = obj.get("event_type"), obj.get("session_id")
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
    ``session_id``). Lines that are not valid events are skipped and counted (one warning),
    events whose type is not in ``event_types`` are ignored, and a repeated ``event_id`` is
    skipped as a duplicate delivery. Each user's events are ordered by time (file order breaks ties)
    and a new session starts when ``session_id`` changes (absent counts as a value) or after
    more than ``session_gap_s`` seconds without events. Sessions are ordered by start time;
    the vocabulary numbers items ``1..N`` in order of first appearance in that order.
    """
    path = Path(path)
    if not path.is_file():
        raise BenchmarkNotFoundError(f"event file {path} not found")
    digest = hashlib.sha256()
    seen_ids: set[str] = set()
    per_user: dict[str, list[_Event]] = {}
    n_invalid = n_duplicates = 0
    with path.open("rb") as handle:
        for line in handle:
            digest.update(line)
            if not line.strip():
                continue
            parsed = _parse_event(line)
            if parsed is None:
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
    )
