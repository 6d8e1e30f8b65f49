"""How each variant of an experiment did, from the attribution log.

The worker writes one *served* record per recommendation made under an experiment and one
*attribution* per click, add_to_cart or purchase credited to a recommendation
(:mod:`schemas.feedback`). :func:`aggregate` turns them into a report per variant:

* **recommendations**: distinct ``recommendation_id`` of the variant's served records;
* **users**: distinct ``user_id`` of the variant's served records;
* **clicks / carts / purchases**: distinct attributions (one per ``recommendation_id`` +
  ``item_id`` + ``event_type``) of those recommendations;
* **ctr**: recommendations with at least one attributed click / recommendations;
* **conversion**: users with at least one attributed purchase / users;
* **revenue**: the sum of the attributed purchases' revenue (a purchase without a price adds
  nothing); **revenue_per_user** = revenue / users;
* **ctr_ci95 / conversion_ci95**: 95 % Wilson score intervals ``[lo, hi]``;
* **comparisons**: for every variant but the control, metrics ``ctr`` and ``conversion``,
  the two-sided p-value of the pooled two-proportion z-test against the control.

The log is at-least-once, so every record counts once whatever how often it was written (a
worker killed between producing and committing writes it again). An attribution counts for
the variant its recommendation's served record names; attributions of the experiment whose
recommendation has no served record in the log are not counted (:attr:`ExperimentReport
.unmatched_attributions` says how many).

The control is the variant named ``A`` when there is one, else the alphabetically first;
``control=`` overrides it. Nothing divides by zero: over zero recommendations or users a
rate and its interval are None (JSON null), and a p-value is None when the test is undefined
(a group with no trials, or both groups at a rate of exactly 0 or exactly 1). A variant named
as the control but absent from the log is reported with zero counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from schemas.feedback import Attribution, Feedback, Served
from streams.experiments.stats import rate, two_proportion_p_value, wilson_interval
from streams.settings import Settings

DEFAULT_CONTROL: Final = "A"
METRICS: Final = ("ctr", "conversion")


@dataclass(frozen=True)
class VariantReport:
    """One variant's figures (see the module docstring for the definitions)."""

    users: int
    recommendations: int
    clicks: int
    carts: int
    purchases: int
    revenue: float
    clicked_recommendations: int  # recommendations with >= 1 attributed click
    converted_users: int  # users with >= 1 attributed purchase

    @property
    def ctr(self) -> float | None:
        return rate(self.clicked_recommendations, self.recommendations)

    @property
    def conversion(self) -> float | None:
        return rate(self.converted_users, self.users)

    @property
    def revenue_per_user(self) -> float | None:
        return self.revenue / self.users if self.users else None

    def to_json_dict(self) -> dict[str, Any]:
        """The variant as the report's JSON shows it."""
        ctr_ci = wilson_interval(self.clicked_recommendations, self.recommendations)
        conversion_ci = wilson_interval(self.converted_users, self.users)
        return {
            "users": self.users,
            "recommendations": self.recommendations,
            "clicks": self.clicks,
            "carts": self.carts,
            "purchases": self.purchases,
            "revenue": self.revenue,
            "revenue_per_user": self.revenue_per_user,
            "ctr": self.ctr,
            "ctr_ci95": None if ctr_ci is None else list(ctr_ci),
            "conversion": self.conversion,
            "conversion_ci95": None if conversion_ci is None else list(conversion_ci),
        }


@dataclass(frozen=True)
class Comparison:
    """A variant against the control on one metric."""

    variant: str
    control: str
    metric: str  # "ctr" | "conversion"
    p_value: float | None

    def to_json_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "control": self.control, "metric": self.metric,
                "p_value": self.p_value}


@dataclass(frozen=True)
class ExperimentReport:
    """Every variant of one experiment, and each compared with the control."""

    experiment: str
    control: str | None  # None: nothing was served under the experiment
    variants: dict[str, VariantReport]  # control first, then by name
    comparisons: list[Comparison]
    unmatched_attributions: int = 0
    skipped_records: int = 0  # records of the log that break feedback.schema.json

    def to_json_dict(self) -> dict[str, Any]:
        """``{"experiment", "variants", "comparisons"}``: the contract of ``--json``."""
        return {
            "experiment": self.experiment,
            "variants": {name: v.to_json_dict() for name, v in self.variants.items()},
            "comparisons": [c.to_json_dict() for c in self.comparisons],
        }


@dataclass
class _Tally:
    """One variant's distinct ids while the log is read."""

    recommendations: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    attributions: dict[str, set[str]] = field(default_factory=dict)  # event type -> ids
    clicked: set[str] = field(default_factory=set)
    converted: set[str] = field(default_factory=set)
    revenue: float = 0.0

    def report(self) -> VariantReport:
        count = {t: len(self.attributions.get(t, ())) for t in ("click", "add_to_cart",
                                                                "purchase")}
        return VariantReport(
            users=len(self.users), recommendations=len(self.recommendations),
            clicks=count["click"], carts=count["add_to_cart"], purchases=count["purchase"],
            revenue=self.revenue, clicked_recommendations=len(self.clicked),
            converted_users=len(self.converted))


def choose_control(variants: Iterable[str], control: str | None = None) -> str | None:
    """``control`` when given; else ``A`` if present; else the alphabetically first variant
    (None when there is none).

    >>> choose_control(["C", "B"]), choose_control(["B", "A"]), choose_control([], "X")
    ('B', 'A', 'X')
    """
    if control is not None:
        return control
    names = sorted(set(variants))
    if DEFAULT_CONTROL in names:
        return DEFAULT_CONTROL
    return names[0] if names else None


def aggregate(records: Iterable[Feedback], experiment: str, control: str | None = None,
              skipped_records: int = 0) -> ExperimentReport:
    """The report of ``experiment`` over feedback records in log order (duplicates
    allowed); see the module docstring."""
    served: dict[str, Served] = {}
    attributions: dict[str, Attribution] = {}
    for record in records:
        if record.experiment != experiment:
            continue
        if isinstance(record, Served):
            served.setdefault(record.recommendation_id, record)
        else:
            attributions.setdefault(record.attribution_id, record)
    tallies: dict[str, _Tally] = {}
    for record in served.values():
        tally = tallies.setdefault(record.variant or "", _Tally())
        tally.recommendations.add(record.recommendation_id)
        tally.users.add(record.user_id)
    unmatched = 0
    for attribution_id, attribution in attributions.items():
        shown = served.get(attribution.recommendation_id)
        if shown is None:
            unmatched += 1
            continue
        tally = tallies[shown.variant or ""]
        tally.attributions.setdefault(attribution.event_type, set()).add(attribution_id)
        if attribution.event_type == "click":
            tally.clicked.add(shown.recommendation_id)
        elif attribution.event_type == "purchase":
            tally.converted.add(shown.user_id)
            tally.revenue += attribution.revenue or 0.0
    chosen = choose_control(tallies, control)
    if chosen is not None:
        tallies.setdefault(chosen, _Tally())
    names = sorted(tallies, key=lambda name: (name != chosen, name))
    variants = {name: tallies[name].report() for name in names}
    return ExperimentReport(experiment, chosen, variants, _compare(variants, chosen),
                            unmatched, skipped_records)


def _compare(variants: dict[str, VariantReport], control: str | None) -> list[Comparison]:
    if control is None:
        return []
    base = variants[control]
    out = []
    for name, variant in variants.items():
        if name == control:
            continue
        out.append(Comparison(name, control, "ctr", two_proportion_p_value(
            base.clicked_recommendations, base.recommendations,
            variant.clicked_recommendations, variant.recommendations)))
        out.append(Comparison(name, control, "conversion", two_proportion_p_value(
            base.converted_users, base.users, variant.converted_users, variant.users)))
    return out


def read_report(settings: Settings, experiment: str, control: str | None = None
                ) -> ExperimentReport:
    """The report of ``experiment`` over the whole feedback topic, up to its end now."""
    from streams.lifecycle.export import read_topics, select_feedback

    selection = select_feedback(read_topics(settings, [settings.topic_feedback]))
    return aggregate(selection.records, experiment, control, selection.skipped)


def render_text(report: ExperimentReport) -> str:
    """The report as a fixed-width table plus one line per comparison."""
    if not report.variants:
        return (f"experiment {report.experiment}: no recommendations served under it in the "
                "feedback log (is it running, and has the worker served anyone yet?)")
    lines = [f"experiment {report.experiment} (control {report.control})", ""]
    header = (f"{'variant':<10} {'users':>8} {'recs':>8} {'clicks':>7} {'carts':>7} "
              f"{'purch.':>7} {'revenue':>11} {'rev/user':>9}  {'CTR [95% CI]':<24} "
              "conversion [95% CI]")
    lines += [header, "-" * len(header)]
    for name, variant in report.variants.items():
        data = variant.to_json_dict()
        lines.append(
            f"{name:<10} {variant.users:>8} {variant.recommendations:>8} {variant.clicks:>7} "
            f"{variant.carts:>7} {variant.purchases:>7} {variant.revenue:>11.2f} "
            f"{_number(variant.revenue_per_user):>9}  "
            f"{_rate(variant.ctr, data['ctr_ci95']):<24} "
            f"{_rate(variant.conversion, data['conversion_ci95']):<24}".rstrip())
    if report.comparisons:
        lines += ["", f"two-sided two-proportion z-test against {report.control}:"]
        for c in report.comparisons:
            p_value = "undefined" if c.p_value is None else f"{c.p_value:.4g}"
            lines.append(f"  {c.variant} {c.metric:<10} p = {p_value}")
    if report.unmatched_attributions:
        lines.append(f"\n{report.unmatched_attributions} attributions name a recommendation "
                     "with no served record in the log; not counted")
    if report.skipped_records:
        lines.append(f"{report.skipped_records} feedback records break feedback.schema.json; "
                     "skipped")
    return "\n".join(lines)


def _rate(value: float | None, interval: list[float] | None) -> str:
    if value is None or interval is None:
        return "-"
    return f"{value:.2%} [{interval[0]:.2%}, {interval[1]:.2%}]"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
