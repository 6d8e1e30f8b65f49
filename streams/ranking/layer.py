"""The ranking layer: from each user's candidate pool (model ranking merged with text
neighbours, or trending) to the final explained list, for a whole micro-batch at once, on the
scoring thread. In order, each step switchable in settings:

1. **search** — the user's latest search (if recent) adds the items nearest to the query
   and raises every candidate by ``weight * cosine / best cosine`` (relative to the best
   match, so a query matches as strongly across languages as within one;
   :mod:`~streams.ranking.search`);
2. **rules** — the merchandiser's exclusions and boosts (:mod:`~streams.ranking.rules`);
3. **selection** — maximal marginal relevance over item text within the rules' category
   caps, cut to ``k`` (:mod:`models.diversity`).

While no step changes a user's list, its order and scores are the pool's as they came.
Otherwise scores become relevance values: the pool's order mapped to (0, 1] (best 1), plus
the search term, times any boost; comparable within one list only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.diversity import search_gains, select
from streams.catalog.catalog import Catalog, ItemFacts
from streams.ops.metrics import Metrics
from streams.ranking.candidate import Candidate, Reason
from streams.ranking.rules import CapTracker, RuleSet, apply_rules
from streams.ranking.search import Encode, QueryEmbeddings, normalise_query, search_weight

MIN_SEARCH_WEIGHT = 0.01
"""A search that has faded below this no longer counts (about 6.6 half-lives)."""

DIVERSITY_EVERY = 8
"""One list in this many has its diversity measured, counted across micro-batches: the
histogram's distribution is the same, and measuring every list cost 4.5 % of a worker's busy
samples on a backlog, 5 % under a steady load of small micro-batches (py-spy, 2026-12-08)."""
DIVERSITY_SAMPLE = 32
"""At most this many lists of one micro-batch are measured (spread evenly over it)."""


@dataclass(frozen=True)
class RankingConfig:
    k: int
    search_boost: float = 2.0
    """Weight of a fresh search's similarity (0: searches are ignored)."""
    search_half_life_s: float = 900.0
    diversity_lambda: float = 0.0
    """0: relevance order; towards 1: more varied lists."""


@dataclass(frozen=True)
class UserPool:
    """One user's input to the layer."""

    user_id: str
    pool: list[Candidate]
    """Best first, already limited to items that may be recommended."""
    search: tuple[str, int] | None = None
    """The user's latest search: (query, event time ms)."""
    exclude: frozenset[str] = frozenset()


@dataclass
class RankingReport:
    seconds: float = 0.0
    lists: int = 0
    rules: dict[str, int] = field(default_factory=dict)
    diversity: list[float] = field(default_factory=list)
    """Intra-list diversity of the sampled lists whose items have text (for the
    histogram; :data:`DIVERSITY_SAMPLE`)."""
    searches: int = 0


@dataclass
class RankingLayer:
    config: RankingConfig
    catalog: Catalog | None = None
    encode: Callable[[], Encode | None] = lambda: None
    """The text encoder when it is loaded (queries need it), else None."""
    queries: QueryEmbeddings = field(default_factory=QueryEmbeddings)
    rules: Callable[[], RuleSet | None] = lambda: None
    """The rules in force now (read once per batch: a rule change applies to the next)."""
    lists_ranked: int = field(default=0, init=False)
    """Lists this layer has ranked so far (which list is the next to measure)."""

    def rank(self, users: Sequence[UserPool], now_ms: int
             ) -> tuple[dict[str, list[Candidate]], RankingReport]:
        started = time.perf_counter()
        report = RankingReport()
        searched = self._search_vectors(users, now_ms)
        report.searches = len(searched)
        found = self._query_neighbours(users, searched)
        ruleset = self.rules()
        if ruleset is not None and not len(ruleset):
            ruleset = None
        out: dict[str, list[Candidate]] = {}
        for user in users:
            pool = user.pool
            if user.user_id in searched:
                pool = self._steer(user, searched[user.user_id], found.get(user.user_id, []))
            if ruleset is not None:
                applied = apply_rules(ruleset, pool, user.user_id, self._facts)
                _add(report.rules, applied.counts)
                pool = applied.candidates
            out[user.user_id] = self._select(pool, ruleset, report)
        if self.catalog is not None and self.catalog.indexed:
            sample = self._diversity_sample(list(out.values()))
            report.diversity = [value for value in self.catalog.list_diversity(
                [[c.item_id for c in chosen] for chosen in sample]) if value is not None]
        self.lists_ranked += len(out)
        report.lists = len(users)
        report.seconds = time.perf_counter() - started
        return out, report

    def _diversity_sample(self, lists: list[list[Candidate]]) -> list[list[Candidate]]:
        """Every :data:`DIVERSITY_EVERY`-th list, counting on from the previous batches,
        and at most :data:`DIVERSITY_SAMPLE` of them."""
        first = -self.lists_ranked % DIVERSITY_EVERY
        chosen = lists[first::DIVERSITY_EVERY]
        return chosen[:: -(-len(chosen) // DIVERSITY_SAMPLE)] if chosen else []

    # --- search ---------------------------------------------------------------------------

    def _search_vectors(self, users: Sequence[UserPool], now_ms: int
                        ) -> dict[str, tuple[str, float, npt.NDArray[np.float32]]]:
        """user -> (query, weight now, query vector) for users whose search still counts."""
        config, encode = self.config, self.encode()
        if config.search_boost <= 0 or encode is None or self.catalog is None:
            return {}
        live = {}
        for user in users:
            if user.search is None:
                continue
            query, at_ms = user.search
            weight = search_weight(age_s=(now_ms - at_ms) / 1000,
                                   half_life_s=config.search_half_life_s,
                                   boost=config.search_boost)
            if weight >= MIN_SEARCH_WEIGHT and query.strip():
                live[user.user_id] = (query, weight)
        if not live:
            return {}
        vectors = self.queries.lookup([q for q, _ in live.values()], encode)
        return {user: (query, weight, vectors[normalise_query(query)])
                for user, (query, weight) in live.items()
                if np.any(vectors[normalise_query(query)])}

    def _query_neighbours(self, users: Sequence[UserPool],
                          searched: dict[str, tuple[str, float, npt.NDArray[np.float32]]]
                          ) -> dict[str, list[tuple[str, float]]]:
        if not searched or self.catalog is None:
            return {}
        order = [u.user_id for u in users if u.user_id in searched]
        matrix = np.stack([searched[user][2] for user in order])
        return dict(zip(order, self.catalog.nearest(matrix, self.config.k * 2), strict=True))

    def _steer(self, user: UserPool, searched: tuple[str, float, npt.NDArray[np.float32]],
               neighbours: list[tuple[str, float]]) -> list[Candidate]:
        query, weight, vector = searched
        assert self.catalog is not None
        base = {c.item_id: (_base_relevance(i, len(user.pool), c), c)
                for i, c in enumerate(user.pool)}
        for item, _similarity in neighbours:
            if item not in base and item not in user.exclude:
                base[item] = (0.0, Candidate(item, 0.0, Reason.search(query)))
        items, vectors = self.catalog.vectors(list(base))
        gains = search_gains(dict(zip(items, (vectors @ vector).tolist(), strict=True)), weight)
        steered = []
        for item, (relevance, candidate) in base.items():
            gain = gains.get(item, 0.0)
            reason = Reason.search(query) if gain >= relevance else candidate.reason
            steered.append(Candidate(item, relevance + gain, reason))
        steered.sort(key=lambda c: -c.score)  # stable: pool order among equals
        return steered

    # --- selection ------------------------------------------------------------------------

    def _facts(self, item_id: str) -> ItemFacts | None:
        return None if self.catalog is None else self.catalog.facts(item_id)

    def _select(self, pool: list[Candidate], ruleset: RuleSet | None, report: RankingReport
                ) -> list[Candidate]:
        config, catalog = self.config, self.catalog
        lam = config.diversity_lambda
        capped = ruleset is not None and ruleset.has_caps
        if lam <= 0 and not capped:
            return pool[: config.k]
        vectors = (catalog.embeddings([c.item_id for c in pool])
                   if catalog is not None and catalog.indexed else {})
        tracker = CapTracker(ruleset) if ruleset is not None and capped else None
        by_id = {c.item_id: c for c in pool}
        ids = select([(c.item_id, c.score) for c in pool], vectors, k=config.k, lam=lam,
                     admit=None if tracker is None else
                     (lambda item: tracker.admit(item, self._facts(item))))
        if tracker is not None:
            _add(report.rules, tracker.counts)
        return [by_id[item] for item in ids]


TRENDING_RELEVANCE = 0.5
"""Popular items count half as much as the model's or text's choices against a search:
what the shopper just typed says more about them than what everyone looks at."""


def _base_relevance(position: int, size: int, candidate: Candidate) -> float:
    """The pool's order as relevance in (0, 1], best 1 (halved for trending items)."""
    relevance = 1.0 - position / max(size, 1)
    return relevance * TRENDING_RELEVANCE if candidate.reason.kind == "trending" else relevance


def _add(total: dict[str, int], counts: Mapping[str, int]) -> None:
    for rule, count in counts.items():
        total[rule] = total.get(rule, 0) + count


def observe_ranking(metrics: Metrics, report: RankingReport) -> None:
    """What one batch's ranking did, into the worker's metrics."""
    metrics.ranking_seconds.observe(report.seconds)
    for value in report.diversity:
        metrics.recommendation_diversity.observe(value)
    if report.searches:
        metrics.searches_steering.inc(report.searches)
    for rule, count in report.rules.items():
        metrics.rule_applied.labels(rule=rule).inc(count)
