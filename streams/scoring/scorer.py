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
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from schemas.reasons import FallbackReason
from streams.candidates.merge import merge_leading, merge_ranked, spread_categories
from streams.candidates.session import Candidates
from streams.catalog.catalog import Catalog
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
    """Items for one user, best first, and the fallback reason if the model was not used.
    ``source`` names what ranked a fallback ((name, version); None: trending)."""

    items: list[tuple[str, float]]
    fallback: str | None
    source: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ScoringReport:
    seconds: float
    """Wall time of the batched model call."""
    users_scored: int
    """Users the model ranked."""
    without_text: int = 0
    """Users with history ranked without content retrieval because the catalogue holds
    items but none with a text embedding (the text encoder is down): counted as the
    ``text_unavailable`` fallback."""


TEXT_UNAVAILABLE = "text_unavailable"


@dataclass(frozen=True)
class Retrieval:
    """Content retrieval for a batch: the catalogue and how much of a list it gets."""

    catalog: Catalog
    content_slots: int
    history: int
    """Recent items whose text makes the query."""


CONTENT_SOURCE = ("content", "1")


async def score_users(
    candidates: dict[str, Candidates],
    scorer: Scorer | None,
    board: TrendingBoard,
    *,
    k: int,
    now_ms: int,
    executor: Executor | None = None,
    retrieval: Retrieval | None = None,
) -> tuple[dict[str, Scored], ScoringReport]:
    """Recommendations for every user in ``candidates``: one model call for all of them,
    one nearest-neighbour search for all of them, merged by :mod:`streams.candidates.merge`.

    Everything runs on ``executor`` (ONNX Runtime and faiss release the GIL), so the event
    loop keeps consuming and processing other partitions while a batch is being ranked.
    """
    call = functools.partial(rank_users, candidates, scorer, board, k=k, now_ms=now_ms,
                             retrieval=retrieval)
    if executor is None:
        return call()
    return await asyncio.get_running_loop().run_in_executor(executor, call)


def rank_users(
    candidates: dict[str, Candidates],
    scorer: Scorer | None,
    board: TrendingBoard,
    *,
    k: int,
    now_ms: int,
    retrieval: Retrieval | None = None,
) -> tuple[dict[str, Scored], ScoringReport]:
    """:func:`score_users`' work, synchronously (on the scoring thread)."""
    catalog = retrieval.catalog if retrieval else None
    filtering = catalog is not None and len(catalog) > 0
    fetch = 2 * k if filtering else k  # room for items the catalogue says are gone
    content = _content(candidates, retrieval, fetch)
    keep = catalog.keep_recommendable if catalog is not None else list
    results: dict[str, Scored] = {}
    ranked_by_model: list[str] = []
    for user, cand in candidates.items():
        if not cand.history:
            trending = keep(top(board, fetch * 2 if filtering else k, now_ms, cand.exclude))
            if catalog is not None and filtering:
                trending = spread_categories(trending, _root_category(catalog), k=k)
            results[user] = Scored(trending[:k], FALLBACK_NO_HISTORY)
        elif scorer is None:
            results[user] = _fallback(board, cand, content.get(user), k, now_ms,
                                      FALLBACK_NO_MODEL, keep, fetch)
        elif not any(scorer.knows(item) for item in cand.history):
            results[user] = _fallback(board, cand, content.get(user), k, now_ms,
                                      FALLBACK_UNKNOWN_ITEMS, keep, fetch)
        else:
            ranked_by_model.append(user)
    without_text = (
        sum(1 for cand in candidates.values() if cand.history)
        if filtering and catalog is not None and catalog.indexed == 0 else 0)
    if not ranked_by_model or scorer is None:
        return results, ScoringReport(0.0, 0, without_text)
    started = time.perf_counter()
    try:
        ranked = scorer.recommend(
            [candidates[user].history for user in ranked_by_model], fetch,
            [candidates[user].exclude for user in ranked_by_model])
        if len(ranked) != len(ranked_by_model):
            raise ValueError(
                f"model {scorer.name} returned {len(ranked)} rows for {len(ranked_by_model)} "
                "users")
    except Exception:  # a broken model must not stop the stream: serve trending instead
        log.exception("model %s failed on a batch of %d users", scorer.name,
                      len(ranked_by_model))
        for user in ranked_by_model:
            results[user] = _fallback(board, candidates[user], None, k, now_ms,
                                      FALLBACK_SCORING_ERROR, keep, fetch)
        return results, ScoringReport(time.perf_counter() - started, 0, without_text)
    elapsed = time.perf_counter() - started
    slots = retrieval.content_slots if retrieval else 0
    for user, items in zip(ranked_by_model, ranked, strict=True):
        results[user] = Scored(
            merge_ranked(keep(items), content.get(user, []), k=k, content_slots=slots), None)
    return results, ScoringReport(elapsed, len(ranked_by_model), without_text)


def _content(candidates: dict[str, Candidates], retrieval: Retrieval | None, fetch: int
             ) -> dict[str, list[tuple[str, float]]]:
    """Per user with history, the available items closest in text to their recent items
    (never one of their recent or excluded items)."""
    if retrieval is None or retrieval.catalog.indexed == 0:
        return {}
    users = [user for user, cand in candidates.items() if cand.history]
    if not users:
        return {}
    histories = [candidates[user].history[-retrieval.history:] for user in users]
    queries, usable = retrieval.catalog.queries(histories)
    rows = [i for i, ok in enumerate(usable) if ok]
    if not rows:
        return {}
    found = retrieval.catalog.nearest(queries[rows], fetch + retrieval.history)
    out = {}
    for row, neighbours in zip(rows, found, strict=True):
        cand = candidates[users[row]]
        seen = set(cand.history) | cand.exclude
        out[users[row]] = [(item, score) for item, score in neighbours if item not in seen]
    return out


def _fallback(board: TrendingBoard, cand: Candidates, content: list[tuple[str, float]] | None,
              k: int, now_ms: int, reason: str,
              keep: Callable[[Iterable[tuple[str, float]]], list[tuple[str, float]]],
              fetch: int) -> Scored:
    trending = keep(top(board, fetch, now_ms, cand.exclude))
    if not content:
        return Scored(trending[:k], reason)
    return Scored(merge_leading(content, trending, k=k), reason, CONTENT_SOURCE)


def _root_category(catalog: Catalog) -> Callable[[str], str | None]:
    def root(item_id: str) -> str | None:
        facts = catalog.facts(item_id)
        return facts.category[0] if facts and facts.category else None

    return root


@dataclass
class ScoringStage:
    """The model serving now (None: trending only) and the one thread that runs it."""

    scorer: Scorer | None
    executor: Executor
    retrieval: Retrieval | None = None

    def model_name(self) -> str | None:
        return None if self.scorer is None else self.scorer.name

    @property
    def model(self) -> tuple[str, str] | None:
        """(name, version) of the model serving now, for the recommendation message."""
        return None if self.scorer is None else (self.scorer.name, self.scorer.version)

    async def score(
        self, candidates: dict[str, Candidates], board: TrendingBoard, *, k: int, now_ms: int
    ) -> tuple[dict[str, Scored], ScoringReport]:
        """:func:`score_users` with this stage's model and retrieval, on its thread."""
        return await score_users(candidates, self.scorer, board, k=k, now_ms=now_ms,
                                 executor=self.executor, retrieval=self.retrieval)


