"""The merchandiser's rules on one user's ranked candidates: exclusions, boosts, price ranges,
and the per-category caps the final selection enforces.

Rules apply after scoring and before the top-k cut, on the scoring thread, over an immutable
:class:`RuleSet` (:mod:`streams.rules` keeps the current one; a change takes effect on the
next micro-batch). Everything here is pure: the same rule set, candidates and catalogue facts
give the same answer, and nothing is written anywhere but the returned counts.

What each kind does (``schemas/rule.schema.json``):

- ``exclude_items``: the items are removed, for everyone or for one user (``user_id``);
- ``exclude_categories``: items with a listed category at any level of their path go;
- ``price_range``: items priced outside [min, max] go; items without a price stay unless
  ``keep_unpriced`` is false;
- ``boost``: a matching item's score is multiplied by ``factor``; several boosts multiply,
  and the product is held within [0.1, 10] like each factor. An item whose score went up
  carries ``Reason.boosted(rule)`` naming its strongest boost; the list is then re-sorted by
  score (stable: ties keep their order). A demoted item keeps its reason. When no score
  changed, the order is left exactly as it came;
- ``category_cap``: at most ``max_items`` items of one *root* category (the first level of the
  item's category path) per recommendation, enforced by the final selection with
  :class:`CapTracker`. The root, not any level, so that every item counts towards exactly one
  cap and "at most 3 from Electronics" means what it says; items without a category are
  never capped. Two caps on one category: the smaller wins;
- ``exclude_purchased``: not applied here; the window of days is handed to candidate
  generation, see :meth:`RuleSet.exclude_purchased_days`.

An item the catalogue does not know (facts ``None``: the shop publishes no catalogue) cannot be
judged by category, brand or price: those rules leave it alone. Each removed item is counted
for the first rule that removes it, in this order: the user's exclusions, global exclusions,
categories, prices (rule ids in alphabetical order within a kind); each boost counts every
item it re-scores.

>>> from schemas.rules import Boost, ExcludeItems
>>> from streams.catalog.catalog import ItemFacts
>>> rules = RuleSet.of([ExcludeItems(rule_id="recalled", items=("sku-2",)),
...                     Boost(rule_id="promo", brands=("Apera",), factor=4.0)])
>>> brands = {"sku-1": None, "sku-3": "Apera"}
>>> def facts(item):
...     return ItemFacts(item, True, ("Lab",), brands.get(item), None, False)
>>> ranked = [Candidate(f"sku-{n}", 1.0 / n, Reason.sequence()) for n in (1, 2, 3)]
>>> applied = apply_rules(rules, ranked, "u-1", facts)
>>> [(c.item_id, round(c.score, 2), c.reason.to_json()["kind"]) for c in applied.candidates]
[('sku-3', 1.33, 'boosted'), ('sku-1', 1.0, 'sequence')]
>>> applied.counts
{'recalled': 1, 'promo': 1}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from schemas.rules import (
    Boost,
    CategoryCap,
    ExcludeCategories,
    ExcludeItems,
    ExcludePurchased,
    PriceRange,
    Rule,
)
from streams.ranking.candidate import Candidate, Reason

if TYPE_CHECKING:
    from prometheus_client import Counter

    from streams.catalog.catalog import ItemFacts

MIN_FACTOR: Final = 0.1
MAX_FACTOR: Final = 10.0
"""Bounds of one boost's factor (the schema's) and of the product of several."""

Facts = Callable[[str], "ItemFacts | None"]
"""The catalogue lookup: :meth:`streams.catalog.catalog.Catalog.facts`."""


@dataclass(frozen=True, slots=True)
class Cap:
    """At most ``max_items`` items of one root category; ``rule_id`` counts what it holds
    back."""

    max_items: int
    rule_id: str


@dataclass(frozen=True, slots=True)
class Applied:
    """Candidates after the rules (best first) and how many items each rule removed or
    re-scored (rules that did nothing are absent)."""

    candidates: list[Candidate]
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class _Boost:
    rule_id: str
    factor: float
    categories: frozenset[str]
    brands: frozenset[str]


@dataclass(frozen=True, eq=False)
class RuleSet:
    """The rules in force, immutable. Build it with :meth:`of`; read it from any thread."""

    rules: tuple[Rule, ...] = ()
    """Every rule, enabled or not, ordered by rule_id."""
    # Indexes built once here and never changed (plain dicts: read per candidate, where a
    # mapping proxy costs a third more; only read-only views leave the class).
    _user_items: dict[str, dict[str, str]] = field(init=False, repr=False)
    _global_items: dict[str, str] = field(init=False, repr=False)
    _categories: dict[str, str] = field(init=False, repr=False)
    _prices: tuple[PriceRange, ...] = field(init=False, repr=False)
    _boosts: tuple[_Boost, ...] = field(init=False, repr=False)
    _caps: Mapping[str, Cap] = field(init=False, repr=False)
    _default_cap: Cap | None = field(init=False, repr=False)
    _purchased: ExcludePurchased | None = field(init=False, repr=False)

    @classmethod
    def of(cls, rules: Iterable[Rule]) -> RuleSet:
        """A rule set from rules in order of precedence: a later rule replaces an earlier one
        with the same rule_id (settings rules first, then the topic's)."""
        by_id = {rule.rule_id: rule for rule in rules}
        return cls(tuple(by_id[rule_id] for rule_id in sorted(by_id)))

    def __post_init__(self) -> None:
        user_items: dict[str, dict[str, str]] = {}
        global_items: dict[str, str] = {}
        categories: dict[str, str] = {}
        prices: list[PriceRange] = []
        boosts: list[_Boost] = []
        caps: dict[str, Cap] = {}
        default_cap: Cap | None = None
        purchased: ExcludePurchased | None = None
        for rule in self.active:
            if isinstance(rule, ExcludeItems):
                target = (global_items if rule.user_id is None
                          else user_items.setdefault(rule.user_id, {}))
                for item in rule.items:
                    target.setdefault(item, rule.rule_id)
            elif isinstance(rule, ExcludeCategories):
                for category in rule.categories:
                    categories.setdefault(category, rule.rule_id)
            elif isinstance(rule, PriceRange):
                prices.append(rule)
            elif isinstance(rule, Boost):
                boosts.append(_Boost(rule.rule_id, rule.factor, frozenset(rule.categories),
                                     frozenset(rule.brands)))
            elif isinstance(rule, CategoryCap):
                cap = Cap(rule.max_items, rule.rule_id)
                if not rule.categories:
                    default_cap = _smaller(default_cap, cap)
                for category in rule.categories:
                    caps[category] = _smaller(caps.get(category), cap)
            elif isinstance(rule, ExcludePurchased) and (
                    purchased is None or rule.days > purchased.days):
                purchased = rule
        put = object.__setattr__
        put(self, "_user_items", user_items)
        put(self, "_global_items", global_items)
        put(self, "_categories", categories)
        put(self, "_prices", tuple(prices))
        put(self, "_boosts", tuple(boosts))
        put(self, "_caps", MappingProxyType(caps))
        put(self, "_default_cap", default_cap)
        put(self, "_purchased", purchased)

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def active(self) -> tuple[Rule, ...]:
        """The enabled rules, by rule_id."""
        return tuple(rule for rule in self.rules if rule.enabled)

    def rule(self, rule_id: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.rule_id == rule_id), None)

    @property
    def caps(self) -> Mapping[str, int]:
        """Root category -> most items per recommendation, for caps that name categories
        (see :attr:`default_cap` for a cap on every root category; :meth:`cap_for` asks
        both)."""
        return MappingProxyType({key: cap.max_items for key, cap in self._caps.items()})

    @property
    def default_cap(self) -> Cap | None:
        """The cap on every root category no named cap covers (a rule without categories)."""
        return self._default_cap

    def cap_for(self, key: str) -> Cap | None:
        """The cap on root category ``key`` (see :func:`cap_key`), or None."""
        return self._caps.get(key, self._default_cap)

    @property
    def has_caps(self) -> bool:
        return bool(self._caps) or self._default_cap is not None

    def exclude_purchased_days(self, default: float | None) -> float | None:
        """How many days a purchase keeps the item out of the buyer's recommendations, for
        ``candidates_for(..., exclude_purchased_days=...)``: the enabled ``exclude_purchased``
        rule's ``days`` (the longest, if several) replaces ``default``, the setting
        ``exclude_purchased_days`` (None: every purchase kept in state)."""
        return default if self._purchased is None else self._purchased.days

    @property
    def exclude_purchased_rule(self) -> str | None:
        """The rule_id that sets the purchase window, if any (to count what it excludes)."""
        return None if self._purchased is None else self._purchased.rule_id

    @property
    def ranks(self) -> bool:
        """Whether :func:`apply_rules` can change anything (else it returns its input)."""
        return bool(self._user_items or self._global_items or self._categories
                    or self._prices or self._boosts)


def apply_rules(rules: RuleSet, candidates: Sequence[Candidate], user_id: str,
                facts: Facts) -> Applied:
    """Exclusions, price ranges and boosts on one user's candidates (best first, scores
    > 0). Returns a new list; the input is not changed."""
    if not rules.ranks:
        return Applied(list(candidates), {})
    counts: dict[str, int] = {}
    mine = rules._user_items.get(user_id, _NOTHING)
    everyone = rules._global_items
    judged = bool(rules._categories or rules._prices or rules._boosts)
    boosts = rules._boosts
    kept: list[Candidate] = []
    rescored = False
    for candidate in candidates:
        item = candidate.item_id
        removed_by = mine.get(item) or everyone.get(item)
        found = facts(item) if judged and removed_by is None else None
        if found is not None:
            removed_by = _excluded_by(rules, found)
        if removed_by is not None:
            counts[removed_by] = counts.get(removed_by, 0) + 1
            continue
        if found is not None and boosts:
            boosted = _boost(boosts, found, candidate, counts)
            rescored = rescored or boosted is not candidate
            candidate = boosted
        kept.append(candidate)
    if rescored:
        kept.sort(key=lambda c: -c.score)  # stable: ties keep their order
    return Applied(kept, counts)


def cap_key(facts: ItemFacts | None) -> str | None:
    """What a category cap counts an item under: its root category (None: never capped)."""
    if facts is None or not facts.category:
        return None
    return facts.category[0]


class CapTracker:
    """The caps of one recommendation while its items are being selected.

    Ask :meth:`allows` before selecting an item and call :meth:`take` for each item selected
    (or :meth:`admit`, which does both, for a plain greedy cut). :attr:`counts` says how
    many distinct items each cap held back, however often they were asked about.

    >>> from schemas.rules import CategoryCap
    >>> tracker = CapTracker(RuleSet.of([CategoryCap(rule_id="cap", max_items=1)]))
    >>> from streams.catalog.catalog import ItemFacts
    >>> lab = ItemFacts("pH meter", True, ("Lab", "Meters"), None, None, False)
    >>> tracker.admit("a", lab), tracker.admit("b", lab), tracker.admit("c", None)
    (True, False, True)
    >>> tracker.counts
    {'cap': 1}
    """

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules
        self._taken: dict[str, int] = {}
        self._held: dict[str, set[str]] = {}

    def allows(self, item_id: str, facts: ItemFacts | None) -> bool:
        """Whether the item's root category has room left; a refusal is remembered."""
        key = cap_key(facts)
        cap = None if key is None else self._rules.cap_for(key)
        if key is None or cap is None or self._taken.get(key, 0) < cap.max_items:
            return True
        self._held.setdefault(cap.rule_id, set()).add(item_id)
        return False

    def take(self, facts: ItemFacts | None) -> None:
        """The item was selected: it fills a place of its root category."""
        key = cap_key(facts)
        if key is not None:
            self._taken[key] = self._taken.get(key, 0) + 1

    def admit(self, item_id: str, facts: ItemFacts | None) -> bool:
        """:meth:`allows`, and :meth:`take` when it does."""
        if not self.allows(item_id, facts):
            return False
        self.take(facts)
        return True

    @property
    def counts(self) -> dict[str, int]:
        return {rule_id: len(items) for rule_id, items in self._held.items()}


class RuleCounts:
    """Rule counts summed over a micro-batch, then published once.

    >>> from prometheus_client import CollectorRegistry, Counter
    >>> metric = Counter("applied", "help", ["rule"], registry=CollectorRegistry())
    >>> counts = RuleCounts()
    >>> counts.update({"promo": 2}); counts.update({"promo": 1, "cap": 1})
    >>> counts.publish(metric)
    >>> metric.labels(rule="promo")._value.get(), len(counts)
    (3.0, 0)
    """

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._counts)

    def add(self, rule_id: str, n: int = 1) -> None:
        if n:
            self._counts[rule_id] = self._counts.get(rule_id, 0) + n

    def update(self, counts: Mapping[str, int]) -> None:
        for rule_id, n in counts.items():
            self.add(rule_id, n)

    def as_dict(self) -> dict[str, int]:
        return dict(self._counts)

    def publish(self, metric: Counter) -> None:
        """Add the counts to ``streamrec_rule_applied_total{rule}`` and start again."""
        for rule_id, n in self._counts.items():
            metric.labels(rule=rule_id).inc(n)
        self._counts.clear()


_NOTHING: Final[dict[str, str]] = {}


def _smaller(current: Cap | None, new: Cap) -> Cap:
    return new if current is None or new.max_items < current.max_items else current


def _excluded_by(rules: RuleSet, facts: ItemFacts) -> str | None:
    categories = rules._categories
    if categories:
        for level in facts.category:
            rule_id = categories.get(level)
            if rule_id is not None:
                return rule_id
    for price_range in rules._prices:
        price = facts.price
        if price is None:
            if not price_range.keep_unpriced:
                return price_range.rule_id
        elif ((price_range.min_price is not None and price < price_range.min_price)
              or (price_range.max_price is not None and price > price_range.max_price)):
            return price_range.rule_id
    return None


def _boost(boosts: tuple[_Boost, ...], facts: ItemFacts, candidate: Candidate,
           counts: dict[str, int]) -> Candidate:
    factor, strongest, strongest_factor = 1.0, None, 1.0
    for boost in boosts:
        if boost.brands and facts.brand not in boost.brands:
            continue
        if boost.categories and boost.categories.isdisjoint(facts.category):
            continue
        factor *= boost.factor
        counts[boost.rule_id] = counts.get(boost.rule_id, 0) + 1
        if boost.factor > strongest_factor:
            strongest, strongest_factor = boost.rule_id, boost.factor
    if factor == 1.0:
        return candidate
    factor = min(max(factor, MIN_FACTOR), MAX_FACTOR)
    reason = (Reason.boosted(strongest) if factor > 1.0 and strongest is not None
              else candidate.reason)
    return Candidate(candidate.item_id, candidate.score * factor, reason)

