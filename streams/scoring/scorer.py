"""Stage 4: score every user a micro-batch touched — one batched model call and one
nearest-neighbour search for all of them — then hand the explained pools to the ranking layer.

The model is whatever ``models.serving.load_scorer`` serves; when there is none, when a user
has no history, when none of the user's items is known to the model (the catalogue moved on
since it was trained), or when the call fails, the user gets text neighbours of their recent
items and the partition's trending items, and the message says which fallback it is. The
sources are combined by :mod:`streams.candidates.merge`; items the catalogue says are gone
never pass (:class:`streams.catalog.catalog.Catalog`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from schemas.reasons import FallbackReason
from streams.candidates.merge import merge_leading, merge_ranked, spread_categories
from streams.candidates.session import Candidates
from streams.catalog.catalog import Catalog
from streams.ranking.candidate import Candidate, Reason, ReasonKind
from streams.ranking.layer import RankingLayer, RankingReport, UserPool
from streams.state.trending import TrendingBoard, top

if TYPE_CHECKING:
    from streams.scoring.plan import ServingPlan

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
    ``source`` names what ranked a fallback ((name, version); None: trending); ``reasons``
    says why each item is there (parallel to ``items``; empty when not explained)."""

    items: list[tuple[str, float]]
    fallback: str | None
    source: tuple[str, str] | None = None
    reasons: tuple[Reason, ...] = field(default=(), compare=False)


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
    layer_report: RankingReport | None = None
    """What the ranking layer did (None when there is none)."""
    waited_seconds: float = 0.0
    """How long the call waited for the scoring thread before its work started (the thread
    was busy with other partitions' micro-batches); 0 when scored inline."""


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
    layer: RankingLayer | None = None,
    with_content: bool = True,
) -> tuple[dict[str, Scored], ScoringReport]:
    """Recommendations for every user in ``candidates``: one model call for all of them,
    one nearest-neighbour search for all of them, merged by :mod:`streams.candidates.merge`.

    Everything runs on ``executor`` (ONNX Runtime and faiss release the GIL), so the event
    loop keeps consuming and processing other partitions while a batch is being ranked.
    """
    call = functools.partial(rank_users, candidates, scorer, board, k=k, now_ms=now_ms,
                             retrieval=retrieval, layer=layer, with_content=with_content)
    if executor is None:
        return call()
    submitted = time.perf_counter()

    def timed() -> tuple[dict[str, Scored], ScoringReport]:
        waited = time.perf_counter() - submitted
        results, report = call()
        return results, dataclasses.replace(report, waited_seconds=waited)

    return await asyncio.get_running_loop().run_in_executor(executor, timed)


def rank_users(
    candidates: dict[str, Candidates],
    scorer: Scorer | None,
    board: TrendingBoard,
    *,
    k: int,
    now_ms: int,
    retrieval: Retrieval | None = None,
    layer: RankingLayer | None = None,
    with_content: bool = True,
) -> tuple[dict[str, Scored], ScoringReport]:
    """:func:`score_users`' work, synchronously (on the scoring thread): each user's
    explained candidate pool (model, text neighbours unless ``with_content`` is False,
    trending), then the ranking layer."""
    catalog = retrieval.catalog if retrieval else None
    filtering = catalog is not None and len(catalog) > 0
    fetch = 2 * k if filtering else k  # room for items the catalogue says are gone
    content = _content(candidates, retrieval, fetch) if with_content else {}
    keep = catalog.keep_recommendable if catalog is not None else list
    explain = _Explainer(catalog, scorer, board)
    pools: dict[str, _Pool] = {}
    ranked_by_model: list[str] = []
    for user, cand in candidates.items():
        if not cand.history:
            trending = keep(top(board, fetch * 2 if filtering else k, now_ms, cand.exclude))
            if catalog is not None and filtering:
                trending = spread_categories(trending, _root_category(catalog), k=fetch)
            pools[user] = _Pool(explain.trending(trending), FALLBACK_NO_HISTORY)
        elif scorer is None:
            pools[user] = _fallback(board, cand, content.get(user), k, now_ms,
                                    FALLBACK_NO_MODEL, keep, fetch, explain)
        elif not any(scorer.knows(item) for item in cand.history):
            pools[user] = _fallback(board, cand, content.get(user), k, now_ms,
                                    FALLBACK_UNKNOWN_ITEMS, keep, fetch, explain)
        else:
            ranked_by_model.append(user)
    without_text = (
        sum(1 for cand in candidates.values() if cand.history)
        if filtering and catalog is not None and catalog.indexed == 0 else 0)
    elapsed, scored_users = 0.0, 0
    if ranked_by_model and scorer is not None:
        started = time.perf_counter()
        try:
            ranked = scorer.recommend(
                [candidates[user].history for user in ranked_by_model], fetch,
                [candidates[user].exclude for user in ranked_by_model])
            if len(ranked) != len(ranked_by_model):
                raise ValueError(f"model {scorer.name} returned {len(ranked)} rows for "
                                 f"{len(ranked_by_model)} users")
        except Exception:  # a broken model must not stop the stream: serve trending instead
            log.exception("model %s failed on a batch of %d users", scorer.name,
                          len(ranked_by_model))
            elapsed = time.perf_counter() - started
            for user in ranked_by_model:
                pools[user] = _fallback(board, candidates[user], None, k, now_ms,
                                        FALLBACK_SCORING_ERROR, keep, fetch, explain)
        else:
            elapsed, scored_users = time.perf_counter() - started, len(ranked_by_model)
            slots = retrieval.content_slots if retrieval else 0
            for user, items in zip(ranked_by_model, ranked, strict=True):
                model_items = keep(items)
                near = content.get(user, [])
                head = merge_ranked(model_items, near, k=k, content_slots=slots)
                pools[user] = _Pool(explain.merged(
                    _with_spares(head, model_items, near)[:fetch], set(dict(model_items)),
                    candidates[user].history), None)
    results = _finish(candidates, pools, k, now_ms, layer, explain)
    return results, ScoringReport(elapsed, scored_users, without_text,
                                  layer_report=results.report)


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
              fetch: int, explain: _Explainer) -> _Pool:
    trending = keep(top(board, fetch, now_ms, cand.exclude))
    if not content:
        return _Pool(explain.trending(trending), reason)
    merged = merge_leading(content, trending, k=fetch)
    return _Pool(explain.merged(merged, set(), cand.history), reason, CONTENT_SOURCE)


def _with_spares(head: list[tuple[str, float]], *sources: list[tuple[str, float]]
                 ) -> list[tuple[str, float]]:
    """``head`` (the list as merged), then what the sources hold beyond it, for the ranking
    layer to fall back on when rules remove items."""
    out = list(head)
    chosen = {item for item, _ in head}
    for source in sources:
        for pair in source:
            if pair[0] not in chosen:
                chosen.add(pair[0])
                out.append(pair)
    return out


@dataclass(frozen=True)
class _Pool:
    candidates: list[Candidate]
    fallback: str | None
    source: tuple[str, str] | None = None


class _Results(dict[str, Scored]):
    report: RankingReport | None = None


def _finish(candidates: dict[str, Candidates], pools: dict[str, _Pool], k: int, now_ms: int,
            layer: RankingLayer | None, explain: _Explainer) -> _Results:
    results = _Results()
    if layer is None:
        final = {user: pool.candidates[:k] for user, pool in pools.items()}
    else:
        final, results.report = layer.rank(
            [UserPool(user, pool.candidates, candidates[user].search, candidates[user].exclude)
             for user, pool in pools.items()], now_ms)
    explain.anchor(final, candidates)
    for user, pool in pools.items():
        chosen = final[user]
        results[user] = Scored([(c.item_id, c.score) for c in chosen], pool.fallback,
                               pool.source, tuple(c.reason for c in chosen))
    return results


_SIMILAR_PENDING = Reason(ReasonKind.SIMILAR)
"""``similar`` before its recent item is known: :meth:`_Explainer.anchor` names it for the
items that made the final lists only (most candidates never do), for all users at once."""


class _Explainer:
    """Turns a source's (item, score) pairs into candidates that say why they are there."""

    def __init__(self, catalog: Catalog | None, scorer: Scorer | None,
                 board: TrendingBoard) -> None:
        self.catalog, self.scorer, self.board = catalog, scorer, board

    def trending(self, items: Sequence[tuple[str, float]]) -> list[Candidate]:
        reason = Reason.trending()
        return [Candidate(item, score, reason) for item, score in items]

    def merged(self, items: Sequence[tuple[str, float]], from_model: set[str],
               history: Sequence[str]) -> list[Candidate]:
        """Model items are ``sequence``; the others came from text similarity (``similar``
        to the recent item they resemble most, or ``new_item`` when no one has touched
        them yet) or, in a fallback list, from trending. An item counts as text-similar
        when it and at least one recent item have text."""
        catalog = self.catalog
        by_text = catalog is not None and any(catalog.has_text(item) for item in history)
        out = []
        for item, score in items:
            if item in from_model:
                reason = Reason.sequence()
            elif by_text and catalog is not None and catalog.has_text(item):
                reason = Reason.new_item() if self._untouched(item) else _SIMILAR_PENDING
            else:
                reason = Reason.trending()
            out.append(Candidate(item, score, reason))
        return out

    def anchor(self, final: dict[str, list[Candidate]],
               candidates: dict[str, Candidates]) -> None:
        """Name, in place, the recent item behind each ``similar`` reason of the final
        lists: the one whose text is closest (the newest of equals), one batched product for
        every user. An item whose text left the catalogue meanwhile is anchored to the
        newest recent item (its query weighed that one most)."""
        pending = {user: [c.item_id for c in chosen if c.reason is _SIMILAR_PENDING]
                   for user, chosen in final.items()}
        pending = {user: items for user, items in pending.items() if items}
        if not pending:
            return
        recent = {user: list(dict.fromkeys(reversed(candidates[user].history)))
                  for user in pending}
        found = (self.catalog.closest_many([(pending[user], recent[user]) for user in pending])
                 if self.catalog is not None else [{} for _ in pending])
        for user, anchors in zip(pending, found, strict=True):
            newest = recent[user][0] if recent[user] else None
            chosen = final[user]
            for n, candidate in enumerate(chosen):
                if candidate.reason is not _SIMILAR_PENDING:
                    continue
                anchor = anchors.get(candidate.item_id, newest)
                chosen[n] = candidate.rescored(
                    candidate.score,
                    Reason.similar(anchor) if anchor is not None else Reason.trending())

    def _untouched(self, item: str) -> bool:
        known = self.scorer is not None and self.scorer.knows(item)
        return not known and item not in self.board.entries


def _root_category(catalog: Catalog) -> Callable[[str], str | None]:
    def root(item_id: str) -> str | None:
        facts = catalog.facts(item_id)
        return facts.category[0] if facts and facts.category else None

    return root


@dataclass
class ScoringStage:
    """Who serves now (:class:`~streams.scoring.plan.ServingPlan`: the promoted or fixed
    model, the running experiment's variants, a shadow) and the one thread that scores."""

    plans: Callable[[], ServingPlan]
    """The plan in force; the state agent reads it once per micro-batch."""
    executor: Executor
    retrieval: Retrieval | None = None
    layer: RankingLayer | None = None
    serving: Callable[[], Awaitable[None]] | None = None
    """Waits until the worker knows what to serve (the model registry's control topic was
    read); None: it always does (a fixed model directory, or none)."""

    def plan(self) -> ServingPlan:
        return self.plans()

    async def wait_serving(self) -> None:
        if self.serving is not None:
            await self.serving()

    def model_name(self) -> str | None:
        """The name of the model serving users outside experiments (None: trending only)."""
        scorer = self.plans().default.scorer
        return None if scorer is None else scorer.name

    async def score(
        self, candidates: dict[str, Candidates], scorer: Scorer | None, board: TrendingBoard,
        *, k: int, now_ms: int, with_content: bool = True,
    ) -> tuple[dict[str, Scored], ScoringReport]:
        """:func:`score_users` with ``scorer`` and this stage's retrieval, on its thread."""
        return await score_users(candidates, scorer, board, k=k, now_ms=now_ms,
                                 executor=self.executor, retrieval=self.retrieval,
                                 layer=self.layer, with_content=with_content)
