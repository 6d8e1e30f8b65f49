"""The rules engine on one user's candidates: each kind, scopes, bounds, counts and order."""

from __future__ import annotations

import dataclasses
import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import streams.ranking.rules
from schemas.rules import (
    Boost,
    CategoryCap,
    ExcludeCategories,
    ExcludeItems,
    ExcludePurchased,
    PriceRange,
    Rule,
)
from streams.catalog.catalog import ItemFacts
from streams.ops.metrics import create_metrics
from streams.ranking.candidate import Candidate, Reason, ReasonKind
from streams.ranking.rules import (
    Applied,
    Cap,
    CapTracker,
    RuleCounts,
    RuleSet,
    apply_rules,
    cap_key,
)

CATALOG = {
    "ph-1": ItemFacts("pH meter", True, ("Lab", "Meters", "pH meters"), "Apera", 89.9, True),
    "ph-2": ItemFacts("pH meter", True, ("Lab", "Meters", "pH meters"), "Hanna", 45.0, True),
    "scale": ItemFacts("Scale", True, ("Lab", "Scales"), "Ohaus", 1200.0, True),
    "wine": ItemFacts("Red wine", True, ("Food", "Wine"), "Chateau", 12.5, True),
    "book": ItemFacts("Chemistry", True, ("Books",), None, None, True),
    "bare": ItemFacts("No category", True, (), None, 5.0, True),
}
ORDER = ["ph-1", "ph-2", "scale", "wine", "book", "bare", "unknown"]


def facts(item_id: str) -> ItemFacts | None:
    return CATALOG.get(item_id)


def ranked(items: list[str] = ORDER) -> list[Candidate]:
    """Best first, scores 1, 1/2, 1/3, ..."""
    return [Candidate(item, 1.0 / (n + 1), Reason.sequence()) for n, item in enumerate(items)]


def run(*rules: Rule, user: str = "u-1", candidates: list[Candidate] | None = None
        ) -> Applied:
    return apply_rules(RuleSet.of(rules), candidates or ranked(), user, facts)


def ids(applied: Applied) -> list[str]:
    return [c.item_id for c in applied.candidates]


def test_no_rules_change_nothing() -> None:
    applied = run()
    assert applied.candidates == ranked() and applied.counts == {}


def test_global_item_exclusions_apply_to_everyone() -> None:
    rule = ExcludeItems(rule_id="recall", items=("ph-2", "wine", "not-a-candidate"))
    for user in ("u-1", "u-2"):
        applied = run(rule, user=user)
        assert ids(applied) == ["ph-1", "scale", "book", "bare", "unknown"]
        assert applied.counts == {"recall": 2}


def test_per_user_exclusions_apply_to_that_user_only() -> None:
    rule = ExcludeItems(rule_id="u1-no-wine", items=("wine", "unknown"), user_id="u-1")
    assert "wine" not in ids(run(rule, user="u-1"))
    assert run(rule, user="u-1").counts == {"u1-no-wine": 2}
    assert ids(run(rule, user="u-2")) == ORDER
    assert run(rule, user="u-2").counts == {}


def test_category_exclusions_match_any_level_of_the_path() -> None:
    applied = run(ExcludeCategories(rule_id="no-meters", categories=("Meters",)),
                  ExcludeCategories(rule_id="no-books", categories=("Books", "Nope")))
    assert ids(applied) == ["scale", "wine", "bare", "unknown"]
    assert applied.counts == {"no-meters": 2, "no-books": 1}
    assert ids(run(ExcludeCategories(rule_id="no-lab", categories=("Lab",)))) == [
        "wine", "book", "bare", "unknown"]


def test_categories_match_exactly() -> None:
    assert ids(run(ExcludeCategories(rule_id="x", categories=("meters", "Met")))) == ORDER


def test_price_range_keeps_unpriced_items_by_default() -> None:
    applied = run(PriceRange(rule_id="mid", min_price=12.5, max_price=89.9))
    assert ids(applied) == ["ph-1", "ph-2", "wine", "book", "unknown"]  # bounds inclusive
    assert applied.counts == {"mid": 2}  # scale (too dear), bare (too cheap)


def test_price_range_can_drop_unpriced_items() -> None:
    applied = run(PriceRange(rule_id="cheap", max_price=50, keep_unpriced=False))
    assert ids(applied) == ["ph-2", "wine", "bare", "unknown"]
    assert applied.counts == {"cheap": 3}  # ph-1, scale, book (no price)


def test_unknown_items_are_left_to_item_rules_only() -> None:
    rules = (ExcludeCategories(rule_id="c", categories=("Lab",)),
             PriceRange(rule_id="p", max_price=1, keep_unpriced=False),
             Boost(rule_id="b", brands=("Apera",), factor=2))
    assert "unknown" in ids(run(*rules))
    assert "unknown" not in ids(run(*rules, ExcludeItems(rule_id="i", items=("unknown",))))


def test_an_item_removed_counts_once_for_the_first_rule() -> None:
    applied = run(ExcludeItems(rule_id="z-mine", items=("wine",), user_id="u-1"),
                  ExcludeItems(rule_id="a-all", items=("wine",)),
                  ExcludeCategories(rule_id="cat", categories=("Wine",)),
                  PriceRange(rule_id="price", max_price=1))
    assert ids(applied) == ["book", "unknown"]
    assert applied.counts == {"z-mine": 1, "price": 4}  # ph-1, ph-2, scale, bare


def test_a_boost_multiplies_the_score_names_the_rule_and_re_sorts() -> None:
    applied = run(Boost(rule_id="books", categories=("Books",), factor=10))
    assert ids(applied) == ["book", "ph-1", "ph-2", "scale", "wine", "bare", "unknown"]
    book = applied.candidates[0]
    assert book.score == pytest.approx(10 / 5)
    assert book.reason == Reason.boosted("books")
    assert all(c.reason.kind is ReasonKind.SEQUENCE for c in applied.candidates[1:])
    assert applied.counts == {"books": 1}


def test_a_boost_needs_every_criterion_it_names() -> None:
    rule = Boost(rule_id="apera-meters", categories=("Meters",), brands=("Apera",), factor=2)
    applied = run(rule)
    assert [c.item_id for c in applied.candidates if c.reason.kind is ReasonKind.BOOSTED] == [
        "ph-1"]
    brand_only = run(Boost(rule_id="hanna", brands=("Hanna",), factor=3))
    assert ids(brand_only)[:2] == ["ph-2", "ph-1"]


def test_boosts_multiply_within_bounds_and_the_strongest_is_named() -> None:
    rules = [Boost(rule_id=f"b{n}", categories=("Lab",), factor=10) for n in range(3)]
    applied = run(*rules)
    ph1 = next(c for c in applied.candidates if c.item_id == "ph-1")
    assert ph1.score == pytest.approx(1.0 * 10)  # 1000x held to 10x
    assert ph1.reason == Reason.boosted("b0")  # ties: the first rule_id
    assert applied.counts == {"b0": 3, "b1": 3, "b2": 3}
    tiny = run(*[Boost(rule_id=f"d{n}", categories=("Lab",), factor=0.1) for n in range(3)])
    ph1 = next(c for c in tiny.candidates if c.item_id == "ph-1")
    assert ph1.score == pytest.approx(0.1)
    strongest = run(Boost(rule_id="a", brands=("Apera",), factor=1.5),
                    Boost(rule_id="b", categories=("Lab",), factor=4))
    assert strongest.candidates[0].reason == Reason.boosted("b")


def test_a_demotion_keeps_the_reason_and_moves_the_item_down() -> None:
    applied = run(Boost(rule_id="less-apera", brands=("Apera",), factor=0.1))
    ph1 = next(c for c in applied.candidates if c.item_id == "ph-1")
    assert ph1.reason == Reason.sequence() and ph1.score == pytest.approx(0.1)
    assert ids(applied) == ["ph-2", "scale", "wine", "book", "bare", "unknown", "ph-1"]
    assert applied.counts == {"less-apera": 1}


def test_a_boost_offset_by_a_demotion_changes_nothing() -> None:
    applied = run(Boost(rule_id="up", brands=("Apera",), factor=2),
                  Boost(rule_id="down", brands=("Apera",), factor=0.5))
    assert applied.candidates == ranked()
    assert applied.counts == {"up": 1, "down": 1}


def test_ties_keep_their_order_after_a_boost() -> None:
    flat = [Candidate(item, 1.0, Reason.trending()) for item in ORDER]
    applied = run(Boost(rule_id="x", brands=("Ohaus",), factor=2), candidates=flat)
    assert ids(applied) == ["scale", *[i for i in ORDER if i != "scale"]]


def test_without_a_score_change_the_order_is_untouched() -> None:
    """The caller's order (e.g. interleaved sources) stays even when not sorted by score."""
    mixed = [Candidate(item, score, Reason.sequence())
             for item, score in zip(ORDER, [0.1, 0.9, 0.5, 0.7, 0.2, 0.3, 0.8], strict=True)]
    applied = run(ExcludeItems(rule_id="x", items=("wine",)),
                  Boost(rule_id="nobody", brands=("Nobody",), factor=5), candidates=mixed)
    assert applied.candidates == [c for c in mixed if c.item_id != "wine"]


def test_disabled_rules_do_nothing() -> None:
    rules = [ExcludeItems(rule_id="a", items=("ph-1",), enabled=False),
             Boost(rule_id="b", brands=("Hanna",), factor=5, enabled=False),
             ExcludePurchased(rule_id="c", days=3, enabled=False),
             CategoryCap(rule_id="d", max_items=1, enabled=False)]
    ruleset = RuleSet.of(rules)
    assert apply_rules(ruleset, ranked(), "u-1", facts).candidates == ranked()
    assert ruleset.active == () and len(ruleset) == 4
    assert ruleset.exclude_purchased_days(14.0) == 14.0 and not ruleset.has_caps


def test_the_input_is_not_changed() -> None:
    candidates = ranked()
    before = list(candidates)
    run(ExcludeItems(rule_id="x", items=("ph-1",)),
        Boost(rule_id="y", brands=("Hanna",), factor=3), candidates=candidates)
    assert candidates == before


def test_the_purchase_window_replaces_the_setting() -> None:
    assert RuleSet.of([]).exclude_purchased_days(None) is None
    assert RuleSet.of([]).exclude_purchased_days(14.0) == 14.0
    ruleset = RuleSet.of([ExcludePurchased(rule_id="short", days=7),
                          ExcludePurchased(rule_id="long", days=90)])
    assert ruleset.exclude_purchased_days(14.0) == 90.0
    assert ruleset.exclude_purchased_days(None) == 90.0
    assert ruleset.exclude_purchased_rule == "long"
    assert RuleSet.of([]).exclude_purchased_rule is None


def test_a_later_rule_replaces_an_earlier_one_with_the_same_id() -> None:
    ruleset = RuleSet.of([ExcludeItems(rule_id="x", items=("ph-1",)),
                          ExcludeItems(rule_id="x", items=("ph-2",))])
    assert len(ruleset) == 1
    assert ids(apply_rules(ruleset, ranked(), "u", facts))[:2] == ["ph-1", "scale"]


def test_a_rule_set_is_immutable() -> None:
    ruleset = RuleSet.of([CategoryCap(rule_id="c", categories=("Lab",), max_items=2),
                          ExcludeItems(rule_id="x", items=("a",))])
    with pytest.raises(dataclasses.FrozenInstanceError):
        ruleset.rules = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        ruleset.caps["Lab"] = 9  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ruleset.rules[0].rule_id = "y"  # type: ignore[misc]


def test_caps_count_by_root_category() -> None:
    assert cap_key(CATALOG["ph-1"]) == "Lab"
    assert cap_key(CATALOG["bare"]) is None and cap_key(None) is None
    ruleset = RuleSet.of([CategoryCap(rule_id="lab", categories=("Lab",), max_items=2),
                          CategoryCap(rule_id="lab-tight", categories=("Lab",), max_items=1),
                          CategoryCap(rule_id="all", max_items=3)])
    assert dict(ruleset.caps) == {"Lab": 1}
    assert ruleset.cap_for("Lab") == Cap(1, "lab-tight")
    assert ruleset.cap_for("Food") == Cap(3, "all") == ruleset.default_cap
    assert RuleSet.of([]).cap_for("Lab") is None and not RuleSet.of([]).has_caps


def test_the_cap_tracker_holds_back_items_of_a_full_category() -> None:
    ruleset = RuleSet.of([CategoryCap(rule_id="lab", categories=("Lab",), max_items=2)])
    tracker = CapTracker(ruleset)
    chosen = [item for item in ORDER if tracker.admit(item, facts(item))]
    assert chosen == ["ph-1", "ph-2", "wine", "book", "bare", "unknown"]
    assert tracker.counts == {"lab": 1}


def test_the_cap_tracker_counts_distinct_items_held_back() -> None:
    """A selection that asks about the same item many times (e.g. MMR) counts it once."""
    tracker = CapTracker(RuleSet.of([CategoryCap(rule_id="one", max_items=1)]))
    assert tracker.allows("ph-1", CATALOG["ph-1"])
    tracker.take(CATALOG["ph-1"])
    for _ in range(5):
        assert not tracker.allows("ph-2", CATALOG["ph-2"])
        assert not tracker.allows("scale", CATALOG["scale"])
    assert tracker.allows("wine", CATALOG["wine"]) and tracker.allows("bare", CATALOG["bare"])
    assert tracker.counts == {"one": 2}


def test_counts_are_published_once_per_batch_by_rule() -> None:
    metrics = create_metrics(CollectorRegistry())
    counts = RuleCounts()
    counts.update(run(ExcludeItems(rule_id="recall", items=("wine",))).counts)
    counts.update(run(ExcludeItems(rule_id="recall", items=("wine",)), user="u-2").counts)
    counts.add("cap", 0)
    counts.add("cap", 2)
    assert counts.as_dict() == {"recall": 2, "cap": 2}
    counts.publish(metrics.rule_applied)
    assert len(counts) == 0
    registry = metrics.registry
    assert registry.get_sample_value("streamrec_rule_applied_total", {"rule": "recall"}) == 2
    assert registry.get_sample_value("streamrec_rule_applied_total", {"rule": "cap"}) == 2


ITEMS = [f"i{n}" for n in range(12)]
FACTS = {item: ItemFacts(item, True, (f"c{n % 3}", f"s{n % 4}"), f"b{n % 2}",
                         None if n % 5 == 0 else float(n), False)
         for n, item in enumerate(ITEMS)}
RULES = st.one_of(
    st.builds(ExcludeItems, rule_id=st.sampled_from("abc"),
              items=st.lists(st.sampled_from(ITEMS), min_size=1).map(tuple),
              user_id=st.sampled_from([None, "u-1", "u-2"])),
    st.builds(ExcludeCategories, rule_id=st.sampled_from("def"),
              categories=st.lists(st.sampled_from(["c0", "c1", "s2", "zz"]),
                                  min_size=1).map(tuple)),
    st.builds(PriceRange, rule_id=st.sampled_from("gh"),
              min_price=st.sampled_from([None, 2.0]), max_price=st.sampled_from([None, 9.0]),
              keep_unpriced=st.booleans()),
    st.builds(Boost, rule_id=st.sampled_from("ijk"), factor=st.floats(0.1, 10),
              categories=st.sampled_from([(), ("c1",), ("s3",)]),
              brands=st.sampled_from([(), ("b0",)])),
)


@settings(max_examples=300, deadline=None)
@given(rules=st.lists(RULES, max_size=6),
       scores=st.lists(st.floats(0.01, 100), min_size=len(ITEMS), max_size=len(ITEMS)),
       user=st.sampled_from(["u-1", "u-2"]))
def test_what_the_rules_keep(rules: list[Rule], scores: list[float], user: str) -> None:
    ruleset = RuleSet.of(rules)
    candidates = sorted((Candidate(item, s, Reason.sequence())
                         for item, s in zip(ITEMS, scores, strict=True)),
                        key=lambda c: -c.score)
    applied = apply_rules(ruleset, candidates, user, FACTS.get)
    kept = {c.item_id for c in applied.candidates}
    assert len(kept) == len(applied.candidates)
    removed = len(candidates) - len(kept)
    removals = {r.rule_id for r in ruleset.rules if not isinstance(r, Boost)}
    assert sum(n for rule, n in applied.counts.items() if rule in removals) == removed
    for rule in ruleset.rules:
        if isinstance(rule, ExcludeItems) and rule.user_id in (None, user):
            assert not kept & set(rule.items)
        if isinstance(rule, ExcludeCategories):
            assert not any(set(FACTS[i].category) & set(rule.categories) for i in kept)
    original = {c.item_id: c.score for c in candidates}
    for candidate in applied.candidates:
        ratio = candidate.score / original[candidate.item_id]
        assert 0.1 - 1e-9 <= ratio <= 10 + 1e-9
        assert (candidate.reason.kind is ReasonKind.BOOSTED) == (ratio > 1 + 1e-12)
    assert [c.score for c in applied.candidates] == sorted(
        (c.score for c in applied.candidates), reverse=True)


def test_the_docstring_examples_run() -> None:
    result = doctest.testmod(streams.ranking.rules)
    assert result.attempted > 0 and result.failed == 0
