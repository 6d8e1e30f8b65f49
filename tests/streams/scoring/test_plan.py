"""The serving plan: each user goes to exactly one arm, by the experiment's salted hash."""

from __future__ import annotations

from types import MappingProxyType

from schemas.control import Experiment, Variant
from streams.scoring.plan import Arm, ServingPlan, fixed_plan

EXPERIMENT = Experiment("spring", "ab" * 16,
                        (Variant("A", "m-aaaaaaaaaaaa", 0.5), Variant("B", "m-bbbbbbbbbbbb", 0.5)),
                        None, "running", 1, 1)


def test_without_an_experiment_everyone_is_on_the_default_arm() -> None:
    plan = fixed_plan(None)
    assert plan.route(["u1", "u2"]) == {plan.default: ["u1", "u2"]}
    assert plan.route([]) == {}
    assert plan.default.experiment_ref is None
    assert plan.default.labels == ("none", "none")


def test_users_are_split_by_the_experiment_and_each_goes_to_one_arm() -> None:
    arms = {name: Arm(None, f"m-{name}", "spring", name) for name in ("A", "B")}
    plan = ServingPlan(Arm(None, None), EXPERIMENT, MappingProxyType(arms))
    users = [f"user-{i}" for i in range(2000)]
    routed = plan.route(users)
    assert set(routed) <= set(arms.values())
    assert sorted(u for group in routed.values() for u in group) == sorted(users)
    for arm, group in routed.items():
        assert all(EXPERIMENT.variant_for(u).name == arm.variant for u in group)
        assert 850 < len(group) < 1150  # about half each
    assert plan.route(users) == routed  # stable
    assert arms["B"].experiment_ref == {"name": "spring", "variant": "B"}
