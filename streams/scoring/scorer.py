"""Stage 4: score every user a micro-batch touched in one batched model call.

The model is whatever ``models.serving.load_scorer`` serves; when there is none, when a user
has no history, when none of the user's items is known to the model (the catalogue moved on
since it was trained), or when the call fails, the user gets the partition's trending items
and the message says which fallback it is.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Collection, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from schemas.reasons import FallbackReason
from streams.candidates.session import Candidates
from streams.state.trending import TrendingBoard, top

log = logging.getLogger(__name__)

FALLBACK_NO_HISTORY = FallbackReason.NO_HISTORY.value
FALLBACK_NO_MODEL = FallbackReason.NO_MODEL.value
FALLBACK_UNKNOWN_ITEMS = FallbackReason.UNKNOWN_ITEMS.value
FALLBACK_SCORING_ERROR = FallbackReason.SCORING_ERROR.value
FALLBACK_REASONS = tuple(reason.value for reason in FallbackReason)


class Scorer(Protocol):
    """What the stream needs of a model (``models.serving.OnnxScorer`` implements it)."""

    name: str
    version: str

    def knows(self, item_id: str) -> bool:
        """Whether the model was trained on ``item_id`` (unknown ids carry no signal)."""
        ...

    def recommend(
        self,
        histories: Sequence[Sequence[str]],
        k: int,
        exclude: Sequence[Collection[str]],
    ) -> list[list[tuple[str, float]]]: ...


@dataclass(frozen=True, slots=True)
class Scored:
    """Items for one user, best first, and the fallback reason if the model was not used."""

    items: list[tuple[str, float]]
    fallback: str | None


@dataclass(frozen=True, slots=True)
class ScoringReport:
    seconds: float
    users_scored: int


async def score_users(
    candidates: dict[str, Candidates],
    scorer: Scorer | None,
    board: TrendingBoard,
    *,
    k: int,
    now_ms: int,
    executor: Executor | None = None,
) -> tuple[dict[str, Scored], ScoringReport]:
    """Recommendations for every user in ``candidates``: one model call for all of them.

    The model call runs on ``executor`` (ONNX Runtime releases the GIL), so the event loop
    keeps consuming and processing other partitions while a batch is being scored.
    """
    results: dict[str, Scored] = {}
    with_history = [user for user, cand in candidates.items() if cand.history]
    for user, cand in candidates.items():
        if not cand.history:
            results[user] = _trending(board, cand, k, now_ms, FALLBACK_NO_HISTORY)
    if scorer is None:
        for user in with_history:
            results[user] = _trending(board, candidates[user], k, now_ms, FALLBACK_NO_MODEL)
        return results, ScoringReport(0.0, 0)
    scoreable = []
    for user in with_history:
        if any(scorer.knows(item) for item in candidates[user].history):
            scoreable.append(user)
        else:
            results[user] = _trending(board, candidates[user], k, now_ms, FALLBACK_UNKNOWN_ITEMS)
    with_history = scoreable
    if not with_history:
        return results, ScoringReport(0.0, 0)
    started = time.perf_counter()
    call = functools.partial(
        scorer.recommend,
        [candidates[user].history for user in with_history],
        k,
        [candidates[user].exclude for user in with_history],
    )
    try:
        if executor is None:
            ranked = call()
        else:
            ranked = await asyncio.get_running_loop().run_in_executor(executor, call)
        if len(ranked) != len(with_history):
            raise ValueError(
                f"model {scorer.name} returned {len(ranked)} rows for {len(with_history)} users"
            )
    except Exception:  # a broken model must not stop the stream: serve trending instead
        log.exception("model %s failed on a batch of %d users", scorer.name, len(with_history))
        for user in with_history:
            results[user] = _trending(
                board, candidates[user], k, now_ms, FALLBACK_SCORING_ERROR
            )
        return results, ScoringReport(time.perf_counter() - started, 0)
    elapsed = time.perf_counter() - started
    for user, items in zip(with_history, ranked, strict=True):
        results[user] = Scored(items=items, fallback=None)
    return results, ScoringReport(elapsed, len(with_history))


@dataclass
class ScoringStage:
    """The model serving now (None: trending only) and the one thread that runs it."""

    scorer: Scorer | None
    executor: Executor

    def model_name(self) -> str | None:
        return None if self.scorer is None else self.scorer.name

    @property
    def model(self) -> tuple[str, str] | None:
        """(name, version) of the model serving now, for the recommendation message."""
        return None if self.scorer is None else (self.scorer.name, self.scorer.version)

    async def score(
        self, candidates: dict[str, Candidates], board: TrendingBoard, *, k: int, now_ms: int
    ) -> tuple[dict[str, Scored], ScoringReport]:
        """:func:`score_users` with this stage's model, on its thread."""
        return await score_users(candidates, self.scorer, board, k=k, now_ms=now_ms,
                                 executor=self.executor)


def _trending(
    board: TrendingBoard, cand: Candidates, k: int, now_ms: int, reason: str
) -> Scored:
    return Scored(items=top(board, k, now_ms, cand.exclude), fallback=reason)
