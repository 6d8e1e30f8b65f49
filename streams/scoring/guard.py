"""The guard rail: roll a variant back when its model fails significantly more than the
control's.

A failure is a recommendation the variant's model could not make: its call raised or
returned garbage (``scoring_error``) or it knew none of the user's items
(``unknown_items``: trained on another catalogue). Users without history and the reserved
``trending`` variant do not count as failures — they are not the model's fault. Users are
split at random between variants, so the rates are comparable; a one-sided two-proportion
z-test (pooled) says whether the variant's rate is higher than the control's beyond chance.
A variant is judged once both it and the control have ``min_users`` recommendations on this
worker; when the test's p-value is below ``max_p_value``, :meth:`GuardRail.judge` names it
and the state agent ends the experiment with status ``rolled_back`` — every user is served
by the promoted model again, which is the control's version when the experiment was started
as it should be (control = what serves today) — and announces it on the control topic with
the reason, so every worker follows. Counts are per worker and per
experiment: each worker judges what it served.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from schemas.control import Experiment


@dataclass(frozen=True)
class Verdict:
    """A variant the guard rail rolls back, with the evidence."""

    variant: str
    failures: int
    users: int
    control_failures: int
    control_users: int
    p_value: float

    def reason(self, control: str) -> str:
        return (f"guard rail: variant {self.variant} failed {self.failures}/{self.users} "
                f"vs control {control} {self.control_failures}/{self.control_users} "
                f"(one-sided p = {self.p_value:.2g})")


def worse_p_value(failures: int, users: int, control_failures: int,
                  control_users: int) -> float:
    """One-sided p-value that the variant's failure rate exceeds the control's (pooled
    two-proportion z-test); 1.0 when undefined (no users, or no variance).

    >>> round(worse_p_value(30, 200, 2, 200), 8) < 1e-6
    True
    >>> worse_p_value(2, 200, 30, 200) > 0.99
    True
    """
    if users == 0 or control_users == 0:
        return 1.0
    pooled = (failures + control_failures) / (users + control_users)
    variance = pooled * (1 - pooled) * (1 / users + 1 / control_users)
    if variance <= 0:
        return 1.0
    z = (failures / users - control_failures / control_users) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


@dataclass
class GuardRail:
    """Failure counts per (experiment, variant) on this worker, and the judgement."""

    max_p_value: float
    min_users: int
    counts: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    """(experiment, variant) -> [recommendations, failures]."""
    condemned: set[str] = field(default_factory=set)
    """Experiments already rolled back here: judged once (micro-batches of other partitions
    that were scored under the same plan must not roll it back a second time)."""

    def observe(self, experiment: str, variant: str, users: int, failures: int) -> None:
        entry = self.counts.setdefault((experiment, variant), [0, 0])
        entry[0] += users
        entry[1] += failures

    def judge(self, experiment: Experiment) -> Verdict | None:
        """The worst variant significantly worse than the control, or None; an experiment
        is condemned at most once."""
        if experiment.name in self.condemned:
            return None
        control = experiment.control.name
        control_users, control_failures = self.counts.get((experiment.name, control), (0, 0))
        if control_users < self.min_users:
            return None
        worst: Verdict | None = None
        for variant in experiment.variants:
            if variant.name == control:
                continue
            users, failures = self.counts.get((experiment.name, variant.name), (0, 0))
            if users < self.min_users:
                continue
            p_value = worse_p_value(failures, users, control_failures, control_users)
            if p_value < self.max_p_value and (worst is None or p_value < worst.p_value):
                worst = Verdict(variant.name, failures, users, control_failures,
                                control_users, p_value)
        if worst is not None:
            self.condemned.add(experiment.name)
        return worst

    def forget(self, experiment: str) -> None:
        for key in [key for key in self.counts if key[0] == experiment]:
            del self.counts[key]
