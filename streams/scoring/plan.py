"""Who scores whom in a micro-batch: the serving plan, an immutable snapshot.

The state agent takes :meth:`ModelPool.plan <streams.scoring.pool.ModelPool.plan>` once per
micro-batch and uses only that snapshot for the whole batch, so a promotion or an
experiment that lands meanwhile takes effect between micro-batches, never inside one (no
event is scored by two models, none is skipped).

Users are routed to an :class:`Arm`: a variant of the running experiment (by the
experiment's salted hash of the user id, :meth:`schemas.control.Experiment.variant_for`) or,
without an experiment, the promoted model. Every arm is scored with one batched call. A
shadow arm scores every user beside their live arm; its lists are never sent to users.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from schemas.control import TRENDING_VERSION, Experiment
from streams.scoring.scorer import Scorer

NO_EXPERIMENT = "none"
"""The ``experiment`` and ``variant`` metric label of recommendations outside experiments."""


@dataclass(frozen=True, eq=False)
class Arm:
    """A model serving a group of users: the promoted (or fixed) model, or one variant."""

    scorer: Scorer | None
    """None: trending only (no model, or the reserved version ``trending``)."""
    version: str | None
    """The registry version (None for a fixed ``STREAMREC_MODEL_DIR`` or no model)."""
    experiment: str | None = None
    variant: str | None = None

    @property
    def model(self) -> tuple[str, str] | None:
        """(name, version) for the recommendation message: the registry version when there
        is one, else the model directory's own; None without a model."""
        if self.scorer is None:
            return None
        return (self.scorer.name, self.version or self.scorer.version)

    @property
    def is_trending_baseline(self) -> bool:
        """The reserved version ``trending`` as a variant: the trending baseline, pure — no
        model and no text neighbours (the shop's rules and searches still apply). Without a
        model outside experiments, the worker still adds text neighbours."""
        return self.version == TRENDING_VERSION and self.experiment is not None

    @property
    def labels(self) -> tuple[str, str]:
        """(experiment, variant) metric labels."""
        return (self.experiment or NO_EXPERIMENT, self.variant or NO_EXPERIMENT)

    @property
    def experiment_ref(self) -> dict[str, str] | None:
        """The recommendation message's ``experiment`` field."""
        if self.experiment is None or self.variant is None:
            return None
        return {"name": self.experiment, "variant": self.variant}


@dataclass(frozen=True)
class ServingPlan:
    """The arms in force for one micro-batch."""

    default: Arm
    """Serves every user when no experiment runs."""
    experiment: Experiment | None = None
    """The running experiment this plan serves (all its variants are loaded)."""
    arms: Mapping[str, Arm] = field(default_factory=lambda: MappingProxyType({}))
    """Variant name -> arm, for :attr:`experiment`."""
    shadow: Arm | None = None

    def route(self, users: Iterable[str]) -> dict[Arm, list[str]]:
        """Users per arm (arms in first-seen order; users keep their order)."""
        groups: dict[Arm, list[str]] = {}
        if self.experiment is None:
            listed = list(users)
            return {self.default: listed} if listed else {}
        for user in users:
            arm = self.arms[self.experiment.variant_for(user).name]
            groups.setdefault(arm, []).append(user)
        return groups

    def describe(self) -> dict[str, object]:
        """For ``/readyz`` and logs: which version serves in which role."""
        return {
            "promoted": self.default.version,
            "model": None if self.default.scorer is None else self.default.scorer.name,
            "experiment": None if self.experiment is None else {
                "name": self.experiment.name,
                "variants": {name: arm.version for name, arm in self.arms.items()},
                "shadow": None if self.shadow is None else self.shadow.version,
            },
        }


def fixed_plan(scorer: Scorer | None) -> ServingPlan:
    """The plan of a worker with one fixed model (``STREAMREC_MODEL_DIR``) or none."""
    return ServingPlan(default=Arm(scorer, None))
