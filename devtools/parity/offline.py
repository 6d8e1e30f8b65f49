"""The offline side of the parity check: for every case (a session's prefix ending at click
``k``, the target click ``k + 1``) the ranking the same model gives offline, two ways.

* **Worker-equivalent** (:func:`worker_rankings`): the history and exclusions the worker
  derives from its state for this user (:class:`WorkerRules`, from
  ``streams/state/user_state.py`` and ``streams/candidates/session.py``), ranked by
  ``models.serving.load_scorer(model).recommend([history], k, [exclude])`` exactly as the
  scoring stage calls it. Where no item of the history is known to the model the worker
  does not call the model at all (``unknown_items`` fallback, trending): such a case is
  marked, its offline list is the model's context-free answer.
* **Evaluation protocol** (:func:`protocol_rankings`): what ``streamrec evaluate --events``
  does with an event file of the training and the test clicks:
  ``models.data.load_event_sessions`` (sessions split where the session id changes or after
  ``session_gap_s`` without clicks; the vocabulary is every item of the file), every
  (prefix, next item) case of each piece of a test session (``expand_prefixes``), scored
  over that whole catalogue through ``models.evaluation.build_recommender`` and ranked
  pessimistically (``ranks_from_scores``). A case whose target opens a new piece has no
  protocol case; one after a split has a shorter prefix. The training clicks must be in the
  file: the protocol ranks only the items its file names (``ReindexedRecommender`` scores
  the others ``-inf``), so a file of the test clicks alone would rank a far smaller
  catalogue than the worker does.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devtools.parity.dataset import Session, write_events
from streams.errors import StreamrecError
from streams.settings import Settings

BATCH = 256
"""Histories scored per model call offline."""


class ProtocolMismatchError(StreamrecError):
    """The evaluation protocol's sessions are not the pieces this tool derived from the same
    clicks: ``models.data.load_event_sessions`` changed how it splits sessions; update
    ``devtools/parity/offline.py`` (``split_points``) to match it."""


@dataclass(frozen=True, slots=True)
class CaseKey:
    """A case: the prefix of ``session`` ending at click ``k`` (0-based), target ``k + 1``."""

    session_id: str
    k: int


@dataclass(frozen=True, slots=True)
class WorkerRules:
    """What the worker feeds the model for a user whose events are one session's clicks,
    sent in order, each newer than the last (so none is late, none opens a new session).

    ``recent`` keeps the newest ``max_sequence_len`` interactions (duplicates included:
    the worker deduplicates event ids, not items), and the history is all of ``recent``
    whatever the session; without purchases nothing is excluded unless ``exclude_recent``,
    which excludes what ``recent`` holds of the current session (here: all of it).
    """

    max_sequence_len: int
    exclude_recent: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerRules:
        return cls(settings.max_sequence_len, settings.exclude_recent)

    def history(self, session: Session, k: int) -> list[str]:
        """The model's input after click ``k``, oldest first.

        >>> from devtools.parity.dataset import Click
        >>> s = Session("1", tuple(Click(n, i, n) for n, i in enumerate("abcab")))
        >>> WorkerRules(3, False).history(s, 3)
        ['b', 'c', 'a']
        """
        return session.items[: k + 1][-self.max_sequence_len:]

    def exclude(self, session: Session, k: int) -> frozenset[str]:
        """Items never recommended after click ``k``."""
        return frozenset(self.history(session, k)) if self.exclude_recent else frozenset()


@dataclass(frozen=True, slots=True)
class Ranked:
    """One case's offline list (best first), the target's 1-based rank (None: a miss) and,
    for the worker-equivalent side, whether the worker would fall back instead."""

    items: tuple[str, ...]
    scores: tuple[float, ...]
    rank: int | None
    fallback: bool = False
    prefix_len: int = 0


def worker_rankings(sessions: Sequence[Session], model_dir: Path, rules: WorkerRules,
                    k: int) -> dict[CaseKey, Ranked]:
    """The worker-equivalent offline ranking of every case of ``sessions``."""
    from models.serving import load_scorer

    scorer = load_scorer(model_dir, device="cpu", retrieval="exact")
    keys = [CaseKey(s.session_id, n) for s in sessions for n in range(len(s.clicks) - 1)]
    by_id = {s.session_id: s for s in sessions}
    out: dict[CaseKey, Ranked] = {}
    for start in range(0, len(keys), BATCH):
        chunk = keys[start: start + BATCH]
        histories = [rules.history(by_id[key.session_id], key.k) for key in chunk]
        excludes = [rules.exclude(by_id[key.session_id], key.k) for key in chunk]
        lists = scorer.recommend(histories, k, excludes)
        for key, history, ranked in zip(chunk, histories, lists, strict=True):
            items = tuple(item for item, _ in ranked)
            target = by_id[key.session_id].clicks[key.k + 1].item_id
            out[key] = Ranked(items, tuple(score for _, score in ranked),
                              list_rank(items, target),
                              fallback=not any(scorer.knows(item) for item in history),
                              prefix_len=len(history))
    return out


def list_rank(items: Sequence[str], target: str) -> int | None:
    """1-based position of ``target`` in a list, None when absent.

    >>> list_rank(["a", "b"], "b"), list_rank(["a"], "z")
    (2, None)
    """
    for position, item in enumerate(items, start=1):
        if item == target:
            return position
    return None


def split_points(session: Session, gap_s: float) -> list[int]:
    """Positions where the evaluation protocol starts a new session in ``session``: the
    first click, and every click more than ``gap_s`` after the one before (the session id
    never changes within a dataset session).

    >>> from devtools.parity.dataset import Click
    >>> s = Session("1", (Click(0, "a", 0), Click(1, "b", 1000), Click(2, "c", 5000)))
    >>> split_points(s, 2.0)
    [0, 2]
    """
    gap_ms = gap_s * 1000
    starts = [0]
    for n in range(1, len(session.clicks)):
        if session.clicks[n].time_ms - session.clicks[n - 1].time_ms > gap_ms:
            starts.append(n)
    return starts


@dataclass(frozen=True)
class ProtocolResult:
    """The protocol's cases mapped onto this tool's case keys, plus ``streamrec
    evaluate``'s own aggregate over exactly those cases (a consistency check)."""

    cases: dict[CaseKey, Ranked]
    evaluate_metrics: dict[str, float]
    n_cases: int
    n_sessions: int


def protocol_rankings(sessions: Sequence[Session], train: Sequence[Session], model_dir: Path,
                      k: int, gap_s: float = 1800.0) -> ProtocolResult:
    """The evaluation protocol's ranking of every case of ``sessions`` it has, from an event
    file of ``train`` and ``sessions`` (module docstring)."""
    from models.data import Benchmark, load_event_sessions
    from models.evaluation import build_recommender, evaluate, ranks_from_scores
    from models.protocol import top_k

    shared = {s.session_id for s in train} & {s.session_id for s in sessions}
    if shared:
        raise ProtocolMismatchError(f"{len(shared)} session ids are both training and test "
                                    f"sessions (e.g. {min(shared)}): one user each, apart")
    with tempfile.TemporaryDirectory(prefix="streamrec-parity-") as tmp:
        path = Path(tmp) / "events.jsonl"
        write_events(path, [*train, *sessions])
        corpus = load_event_sessions(path, session_gap_s=gap_s)
    vocabulary = corpus.vocabulary
    _check_pieces([*train, *sessions], gap_s, corpus.sessions,
                  corpus.session_starts_ms.tolist(), vocabulary.decode)
    keys: list[CaseKey] = []
    prefixes: list[list[int]] = []
    targets: list[int] = []
    for session in sessions:
        starts = split_points(session, gap_s)
        encoded = vocabulary.encode(session.items)
        for n in range(len(session.clicks) - 1):
            piece = max(start for start in starts if start <= n + 1)
            if piece == n + 1:
                continue  # the target opens a new session: no case
            keys.append(CaseKey(session.session_id, n))
            prefixes.append(encoded[piece: n + 1])
            targets.append(encoded[n + 1])
    target_arr = np.asarray(targets, dtype=np.int64)
    bench = Benchmark(train_sessions=[], test_prefixes=prefixes, test_targets=target_arr,
                      n_items=corpus.n_items, fingerprint=corpus.fingerprint,
                      item_ids=vocabulary.items)
    recommender = build_recommender(bench, str(model_dir), device="cpu")
    recommender.fit([], corpus.n_items)
    out: dict[CaseKey, Ranked] = {}
    for start in range(0, len(keys), BATCH):
        scores = recommender.score(prefixes[start: start + BATCH])  # (B, n_items + 1)
        ranks = ranks_from_scores(scores, target_arr[start: start + BATCH])
        tops = top_k(scores, k)
        for row, key in enumerate(keys[start: start + BATCH]):
            kept = [i for i in tops[row].tolist() if np.isfinite(scores[row, i])]
            rank = int(ranks[row])
            out[key] = Ranked(tuple(vocabulary.decode(kept)),
                              tuple(float(scores[row, i]) for i in kept),
                              rank if rank <= k else None,
                              prefix_len=len(prefixes[start + row]))
    metrics = evaluate(recommender, prefixes, target_arr, k_values=(k,)).metrics
    return ProtocolResult(out, dict(metrics), len(keys), len(corpus.sessions))


def _check_pieces(sessions: Sequence[Session], gap_s: float, corpus_sessions: list[list[int]],
                  starts_ms: list[int], decode: Callable[[Iterable[int]], list[str]]
                  ) -> None:
    """The protocol's sessions must be exactly the pieces :func:`split_points` gives."""
    mine: Counter[tuple[int, tuple[str, ...]]] = Counter()
    for session in sessions:
        cuts = [*split_points(session, gap_s), len(session.clicks)]
        for begin, end in zip(cuts, cuts[1:], strict=False):
            mine[(session.clicks[begin].time_ms, tuple(session.items[begin:end]))] += 1
    theirs: Counter[tuple[int, tuple[str, ...]]] = Counter(
        (start, tuple(decode(items)))
        for start, items in zip(starts_ms, corpus_sessions, strict=True))
    if mine != theirs:
        raise ProtocolMismatchError(
            f"{sum((mine - theirs).values())} pieces differ from load_event_sessions' sessions")
