"""The ranking layer over a tiny catalogue with hand-made 3-d 'text' vectors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from schemas.items import Item
from schemas.rules import Boost, CategoryCap, ExcludeCategories
from streams.catalog.catalog import Catalog
from streams.catalog.records import CatalogRecord
from streams.ranking.candidate import Candidate, Reason, ReasonKind
from streams.ranking.layer import RankingConfig, RankingLayer, UserPool
from streams.ranking.rules import RuleSet
from streams.ranking.search import QueryEmbeddings

NOW = 1_795_456_800_000
AXES = {"meter": (1, 0, 0), "glove": (0, 1, 0), "drill": (0, 0, 1)}


def unit(values: Sequence[float]) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


@pytest.fixture
def catalog() -> Catalog:
    catalog = Catalog(dimensions=3)
    records = {}
    for kind, axis in AXES.items():
        for n in range(4):
            item = f"{kind}-{n}"
            wobble = np.array(axis, dtype=np.float32) + 0.05 * n * np.array((1, 1, 1))
            records[item] = CatalogRecord(Item(item, item, category=(kind.title(),)), "h",
                                          unit(wobble))
    catalog.apply(records)
    return catalog


class FakeEncoder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.stack([unit(AXES[next(k for k in AXES if k in t)]) for t in texts])


def pool(*items: str, reason: Reason | None = None) -> list[Candidate]:
    return [Candidate(item, 10.0 - i, reason or Reason.sequence())
            for i, item in enumerate(items)]


def layer(catalog: Catalog, encoder: FakeEncoder | None = None, **config: object
          ) -> RankingLayer:
    return RankingLayer(RankingConfig(k=3, **config), catalog=catalog,  # type: ignore[arg-type]
                        encode=lambda: encoder, queries=QueryEmbeddings(100))


def test_with_nothing_to_do_the_pool_is_cut_unchanged(catalog: Catalog) -> None:
    ranked, report = layer(catalog).rank(
        [UserPool("u", pool("meter-0", "meter-1", "glove-0", "drill-0"))], NOW)
    assert ranked["u"] == pool("meter-0", "meter-1", "glove-0")
    assert report.lists == 1 and len(report.diversity) == 1


def test_a_search_alone_brings_matching_items_first(catalog: Catalog) -> None:
    encoder = FakeEncoder()
    trending = pool("meter-0", "meter-1", "glove-0", reason=Reason.trending())
    ranked, report = layer(catalog, encoder).rank(
        [UserPool("new", trending, search=("cordless DRILL ", NOW - 1000))], NOW)
    items = ranked["new"]
    assert [c.item_id for c in items] == ["drill-0", "drill-1", "drill-2"]
    assert all(c.reason == Reason.search("cordless DRILL ") for c in items)
    assert report.searches == 1 and encoder.calls == [["cordless drill"]]


def test_a_search_fades_with_its_half_life(catalog: Catalog) -> None:
    encoder = FakeEncoder()
    base = pool("meter-0", "meter-1", "meter-2")
    fresh, _ = layer(catalog, encoder, search_boost=2.0).rank(
        [UserPool("u", base, search=("glove", NOW))], NOW)
    stale, report = layer(catalog, encoder, search_boost=2.0).rank(
        [UserPool("u", base, search=("glove", NOW - 3_600_000 * 10))], NOW)
    assert fresh["u"][0].item_id.startswith("glove")
    assert stale["u"] == base and report.searches == 0


def test_queries_are_embedded_once(catalog: Catalog) -> None:
    encoder = FakeEncoder()
    ranking = layer(catalog, encoder)
    for user in ("a", "b"):
        ranking.rank([UserPool(user, pool("meter-0"), search=("Glove", NOW))], NOW)
    ranking.rank([UserPool("c", pool("meter-0"), search=("glove ", NOW))], NOW)
    assert encoder.calls == [["glove"]]


def test_searches_are_off_without_an_encoder_or_with_zero_boost(catalog: Catalog) -> None:
    base = pool("meter-0", "meter-1", "meter-2")
    for ranking in (layer(catalog, None), layer(catalog, FakeEncoder(), search_boost=0.0)):
        ranked, _ = ranking.rank([UserPool("u", base, search=("glove", NOW))], NOW)
        assert ranked["u"] == base


def test_diversity_spreads_the_list_over_topics(catalog: Catalog) -> None:
    candidates = pool("meter-0", "meter-1", "meter-2", "glove-0", "drill-0")
    plain, plain_report = layer(catalog).rank([UserPool("u", candidates)], NOW)
    varied, varied_report = layer(catalog, diversity_lambda=0.5).rank(
        [UserPool("u", candidates)], NOW)
    assert [c.item_id for c in plain["u"]] == ["meter-0", "meter-1", "meter-2"]
    assert [c.item_id for c in varied["u"]] == ["meter-0", "glove-0", "drill-0"]
    assert varied_report.diversity[0] > plain_report.diversity[0]


def test_a_category_cap_limits_one_category_and_is_counted(catalog: Catalog) -> None:
    rules = RuleSet.of([CategoryCap(rule_id="two-per-category", max_items=2)])
    ranking = RankingLayer(RankingConfig(k=3), catalog=catalog, rules=lambda: rules)
    ranked, report = ranking.rank(
        [UserPool("u", pool("meter-0", "meter-1", "meter-2", "glove-0"))], NOW)
    assert [c.item_id for c in ranked["u"]] == ["meter-0", "meter-1", "glove-0"]
    assert report.rules == {"two-per-category": 1}


def test_the_caps_hold_with_diversity_on_too(catalog: Catalog) -> None:
    rules = RuleSet.of([CategoryCap(rule_id="one-each", max_items=1)])
    ranking = RankingLayer(RankingConfig(k=3, diversity_lambda=0.3), catalog=catalog,
                           rules=lambda: rules)
    ranked, _ = ranking.rank(
        [UserPool("u", pool("meter-0", "meter-1", "glove-0", "glove-1", "drill-0"))], NOW)
    assert [c.item_id for c in ranked["u"]] == ["meter-0", "glove-0", "drill-0"]


def test_rules_see_every_list_and_their_counts_are_reported(catalog: Catalog) -> None:
    current = [RuleSet.of([ExcludeCategories(rule_id="no-gloves", categories=("Glove",))])]
    ranking = RankingLayer(RankingConfig(k=3), catalog=catalog, rules=lambda: current[0])
    users = [UserPool("u", pool("glove-0", "meter-0", "glove-1", "drill-0"))]
    ranked, report = ranking.rank(users, NOW)
    assert [c.item_id for c in ranked["u"]] == ["meter-0", "drill-0"]
    assert report.rules == {"no-gloves": 2}
    assert {c.reason.kind for c in ranked["u"]} == {ReasonKind.SEQUENCE}
    current[0] = RuleSet.of([Boost(rule_id="drills", factor=5.0, categories=("Drill",))])
    ranked, report = ranking.rank(users, NOW)  # the next batch sees the new rules
    assert ranked["u"][0] == Candidate("drill-0", ranked["u"][0].score, Reason.boosted("drills"))
    assert report.rules == {"drills": 1}


def test_diversity_is_measured_on_one_list_in_eight_and_at_most_32_per_batch(
        catalog: Catalog) -> None:
    from streams.ranking.layer import DIVERSITY_EVERY, DIVERSITY_SAMPLE

    assert (DIVERSITY_EVERY, DIVERSITY_SAMPLE) == (8, 32)
    users = [UserPool(f"u{n}", pool("meter-0", "meter-1", "glove-0")) for n in range(400)]
    ranked, report = layer(catalog).rank(users[:100], NOW)
    assert len(ranked) == 100  # every list is ranked; only the figure is sampled
    assert len(report.diversity) == 13  # lists 0, 8, ... 96
    ranked, report = layer(catalog).rank(users, NOW)
    assert len(ranked) == 400 and len(report.diversity) == 25  # 50 due, every 2nd of them


def test_the_diversity_count_runs_on_across_small_batches(catalog: Catalog) -> None:
    ranking = layer(catalog)
    measured = [len(ranking.rank([UserPool(f"u{n}", pool("meter-0", "glove-0"))], NOW)[1]
                    .diversity) for n in range(17)]
    assert measured == [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    _, report = ranking.rank([UserPool(f"v{n}", pool("meter-0", "glove-0"))
                              for n in range(10)], NOW)
    assert len(report.diversity) == 1  # lists 17..26 of the layer: only 24 is due
