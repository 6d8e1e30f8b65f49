"""Case-by-case comparison of the live recommendations with the two offline rankings, the
figures (HR@k, MRR@k over the same cases) and every disagreement with its cause.

A case agrees when the live list is the offline list, item for item in order. A
disagreement gets the first cause that explains it, in this order:

against the worker-equivalent ranking (same history, same exclusions, same model)
  ``unknown_items_fallback``  no history item is known to the model: the worker serves
                              trending (``fallback: unknown_items``), offline the model's
                              context-free answer;
  ``near_tie``                the scores at every rank agree within :data:`SCORE_TOLERANCE`
                              (items of all but equal score swapped: floating-point noise of
                              a differently composed batch);
  ``unexplained``             anything else: a train/serve parity bug.

against the evaluation protocol (``streamrec evaluate --events`` on the same clicks)
  ``no_protocol_case``        the target opens a new session there (more than the session
                              gap after the click before): the protocol has no such case;
  ``protocol_session_split``  the protocol's prefix starts after such a gap, the worker's
                              holds the whole session;
  ``exclude_recent``          the worker excludes the items of the current session;
  ``worker_truncates_history``  the worker keeps the last ``max_sequence_len`` interactions,
                              the protocol the whole prefix (the model then reads its own
                              window of the known items);
  ``unknown_items_fallback``, ``near_tie``, ``unexplained`` as above;
  and, for identical lists, ``pessimistic_tie``: the protocol ranks a target tied in score
  after every item of equal score, a list ranks ties by item index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devtools.parity.dataset import Session
from devtools.parity.offline import CaseKey, ProtocolResult, Ranked, WorkerRules, split_points
from devtools.parity.replay import LiveCase

SCORE_TOLERANCE = 1e-4
"""Largest score difference (relative to max(1, |score|)) still counted as a near tie."""

BUDGET_POINTS = 0.5
"""The issue's bound: live and offline HR@k / MRR@k within this many points (of 100)."""

EXAMPLES = 5
"""Example cases kept per cause in the report."""


@dataclass(frozen=True)
class Figures:
    """HR@k and MRR@k (fractions) over ``cases`` ranks."""

    hr: float
    mrr: float
    cases: int

    @classmethod
    def of(cls, ranks: Iterable[int | None], k: int) -> Figures:
        """
        >>> Figures.of([1, 4, None, 30], k=20)
        Figures(hr=0.5, mrr=0.3125, cases=4)
        """
        values = list(ranks)
        hits = [1.0 / r for r in values if r is not None and r <= k]
        n = len(values)
        return cls(len(hits) / n if n else 0.0, sum(hits) / n if n else 0.0, n)

    def to_json(self) -> dict[str, float | int]:
        return {"hr": self.hr, "mrr": self.mrr, "cases": self.cases}


@dataclass
class Comparison:
    """Agreements and disagreements of the live lists with one offline side."""

    cases: int = 0
    identical: int = 0
    causes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    max_score_diff: float = 0.0
    """Largest live-vs-offline score difference over identical lists."""

    def record(self, cause: str | None, example: dict[str, Any]) -> None:
        self.cases += 1
        if cause is None:
            self.identical += 1
            return
        self.causes[cause] += 1
        kept = self.examples.setdefault(cause, [])
        if len(kept) < EXAMPLES:
            kept.append(example)

    @property
    def share_identical(self) -> float:
        return self.identical / self.cases if self.cases else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"cases": self.cases, "identical_lists": self.identical,
                "share_identical": self.share_identical,
                "max_score_diff_identical": self.max_score_diff,
                "disagreements": dict(self.causes.most_common()), "examples": self.examples}


@dataclass
class ParityReport:
    """Everything the tool prints and writes."""

    k: int
    live: Figures
    offline: Figures
    protocol_own: Figures
    protocol_evaluate: Mapping[str, float]
    live_on_protocol_cases: Figures
    protocol_on_protocol_cases: Figures
    vs_offline: Comparison
    vs_protocol: Comparison
    fallbacks: Counter[str]
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def within_budget(self) -> dict[str, bool]:
        """Whether live and each offline figure, on the same cases, agree within
        :data:`BUDGET_POINTS`."""
        def close(a: float, b: float) -> bool:
            return abs(a - b) * 100 <= BUDGET_POINTS

        return {
            "offline_hr": close(self.live.hr, self.offline.hr),
            "offline_mrr": close(self.live.mrr, self.offline.mrr),
            "protocol_hr": close(self.live_on_protocol_cases.hr,
                                 self.protocol_on_protocol_cases.hr),
            "protocol_mrr": close(self.live_on_protocol_cases.mrr,
                                  self.protocol_on_protocol_cases.mrr),
        }

    @property
    def holds(self) -> bool:
        """Parity holds: no unexplained disagreement on either side, figures in budget."""
        unexplained = self.vs_offline.causes["unexplained"] + self.vs_protocol.causes[
            "unexplained"]
        return unexplained == 0 and all(self.within_budget.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k, "holds": self.holds, **self.context,
            "live": self.live.to_json(), "offline_worker_history": self.offline.to_json(),
            "protocol_own_cases": self.protocol_own.to_json(),
            "protocol_streamrec_evaluate": dict(self.protocol_evaluate),
            "live_on_protocol_cases": self.live_on_protocol_cases.to_json(),
            "protocol_on_protocol_cases": self.protocol_on_protocol_cases.to_json(),
            "within_budget_points": BUDGET_POINTS, "within_budget": self.within_budget,
            "live_fallbacks": dict(self.fallbacks),
            "live_vs_offline_worker_history": self.vs_offline.to_json(),
            "live_vs_protocol": self.vs_protocol.to_json(),
        }


def compare(sessions: Sequence[Session], live: Mapping[CaseKey, LiveCase],
            offline: Mapping[CaseKey, Ranked], protocol: ProtocolResult, rules: WorkerRules,
            k: int, gap_s: float) -> ParityReport:
    """The report over every live case (every case must have been replayed)."""
    by_id = {s.session_id: s for s in sessions}
    keys = [CaseKey(s.session_id, n) for s in sessions for n in range(len(s.clicks) - 1)]
    missing = [key for key in keys if key not in live]
    if missing:
        raise ValueError(f"{len(missing)} cases were not replayed, e.g. {missing[0]}")
    vs_offline, vs_protocol = Comparison(), Comparison()
    for key in keys:
        case, mine = live[key], offline[key]
        session = by_id[key.session_id]
        example = _example(key, session, case, mine)
        cause = _versus_offline(case, mine)
        if cause is None:
            vs_offline.max_score_diff = max(vs_offline.max_score_diff,
                                            _max_diff(case.scores, mine.scores))
        vs_offline.record(cause, example)
        theirs = protocol.cases.get(key)
        vs_protocol.record(
            _versus_protocol(key, session, case, theirs, rules, gap_s),
            example | {"protocol": None if theirs is None else _side(theirs)})
    on_protocol = [key for key in keys if key in protocol.cases]
    return ParityReport(
        k=k,
        live=Figures.of((live[key].rank for key in keys), k),
        offline=Figures.of((offline[key].rank for key in keys), k),
        protocol_own=Figures.of((r.rank for r in protocol.cases.values()), k),
        protocol_evaluate=protocol.evaluate_metrics,
        live_on_protocol_cases=Figures.of((live[key].rank for key in on_protocol), k),
        protocol_on_protocol_cases=Figures.of(
            (protocol.cases[key].rank for key in on_protocol), k),
        vs_offline=vs_offline, vs_protocol=vs_protocol,
        fallbacks=Counter(live[key].fallback or "none" for key in keys),
    )


def _versus_offline(case: LiveCase, mine: Ranked) -> str | None:
    if case.items == mine.items:
        return None
    if mine.fallback and case.fallback == "unknown_items":
        return "unknown_items_fallback"
    if _near_tie(case.scores, mine.scores):
        return "near_tie"
    return "unexplained"


def _versus_protocol(key: CaseKey, session: Session, case: LiveCase, theirs: Ranked | None,
                     rules: WorkerRules, gap_s: float) -> str | None:
    if theirs is None:
        return "no_protocol_case"
    if case.items == theirs.items:
        return None if case.rank == theirs.rank else "pessimistic_tie"
    if max(s for s in split_points(session, gap_s) if s <= key.k) > 0:
        return "protocol_session_split"
    if rules.exclude(session, key.k):
        return "exclude_recent"
    if key.k + 1 > rules.max_sequence_len:
        return "worker_truncates_history"
    if case.fallback == "unknown_items":
        return "unknown_items_fallback"
    if _near_tie(case.scores, theirs.scores):
        return "near_tie"
    return "unexplained"


def _near_tie(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(
        abs(x - y) <= SCORE_TOLERANCE * max(1.0, abs(x)) for x, y in zip(a, b, strict=True))


def _max_diff(a: Sequence[float], b: Sequence[float]) -> float:
    return max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0)


def _side(ranked: Ranked) -> dict[str, Any]:
    return {"items": list(ranked.items), "rank": ranked.rank, "prefix_len": ranked.prefix_len}


def _example(key: CaseKey, session: Session, case: LiveCase, mine: Ranked) -> dict[str, Any]:
    return {
        "session_id": key.session_id, "k": key.k,
        "prefix": session.items[: key.k + 1], "target": session.items[key.k + 1],
        "live": {"items": list(case.items), "rank": case.rank, "fallback": case.fallback},
        "offline": _side(mine) | {"fallback_expected": mine.fallback},
    }


def render(report: ParityReport) -> str:
    """The report as a fixed-width table and a list of disagreements."""
    k = report.k
    rows = [
        ("live (worker, via Kafka)", report.live),
        ("offline, worker's history", report.offline),
        ("evaluation protocol, its cases", report.protocol_own),
        ("live, on the protocol's cases", report.live_on_protocol_cases),
        ("protocol, on those cases", report.protocol_on_protocol_cases),
    ]
    lines = [f"{'':34} {'HR@' + str(k):>8} {'MRR@' + str(k):>8} {'cases':>7}"]
    for name, fig in rows:
        lines.append(f"{name:34} {fig.hr * 100:8.2f} {fig.mrr * 100:8.2f} {fig.cases:7d}")
    ev = report.protocol_evaluate
    lines.append(f"streamrec evaluate's own figure on the protocol's cases: "
                 f"HR@{k} {ev.get(f'hr@{k}', float('nan')) * 100:.2f}, "
                 f"MRR@{k} {ev.get(f'mrr@{k}', float('nan')) * 100:.2f}")
    budget = report.within_budget
    on, theirs = report.live_on_protocol_cases, report.protocol_on_protocol_cases
    lines.append(f"live - offline: HR {(report.live.hr - report.offline.hr) * 100:+.2f}, "
                 f"MRR {(report.live.mrr - report.offline.mrr) * 100:+.2f} points; "
                 f"live - protocol (its cases): HR {(on.hr - theirs.hr) * 100:+.2f}, "
                 f"MRR {(on.mrr - theirs.mrr) * 100:+.2f} points "
                 f"(budget {BUDGET_POINTS}: {'met' if all(budget.values()) else 'NOT met'})")
    lines.append(f"live fallbacks: {dict(report.fallbacks)}")
    for title, comparison in (("live vs offline (worker's history)", report.vs_offline),
                              ("live vs evaluation protocol", report.vs_protocol)):
        lines.append(f"{title}: identical top-{k} lists {comparison.identical}/"
                     f"{comparison.cases} ({comparison.share_identical * 100:.2f} %)")
        for cause, count in comparison.causes.most_common():
            lines.append(f"  {cause:28} {count:7d}")
    return "\n".join(lines)
