"""The model versions a worker holds, loaded off the hot path, and the plan they make.

The control topic (:mod:`streams.control.follow`) hands every worker the promoted version
and the running experiment; :meth:`ModelPool.apply` starts loading whatever version it does
not hold yet on a loader thread (never the scoring thread, never the event loop): load,
check (:func:`models.serving.check_servable`: the export's parity record, the ONNX
interface, finite scores on probe histories) and warm. Only when that succeeded does the
pool build a new :class:`~streams.scoring.plan.ServingPlan` and swap it in with one
attribute assignment; the state agent reads the plan once per micro-batch, so the swap falls
between micro-batches.

A version that fails to load or to pass the check never serves: the serving version stays,
the failure is logged, counted (``streamrec_model_loads_total{outcome="failed"}``), shown in
``/readyz`` and kept in ``streamrec_model_load_failed`` (the alert
``StreamrecModelLoadFailed``) while the control topic still asks for it. An experiment
starts serving only when every one of its variants is loaded; a variant that failed keeps
the whole experiment off (its users get the promoted model) — said in ``/readyz``. A failed
version is not retried by this process (publish a fixed version, or restart the worker).

Versions no longer named by the control topic are dropped, so memory holds the promoted
model, the one promoted before it (so ``streamrec models rollback`` swaps at once), the
running experiment's variants and its shadow, no more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from schemas.control import TRENDING_VERSION, Experiment
from streams.clock import now_ms
from streams.control.topic import ControlSnapshot
from streams.ops.metrics import Metrics
from streams.scoring.plan import Arm, ServingPlan, fixed_plan
from streams.scoring.scorer import Scorer

log = logging.getLogger(__name__)


@dataclass
class ModelPool:
    """Loaded versions, failures, and the serving plan they make (see the module doc)."""

    locate: Callable[[str], Path]
    """Registry version -> local model directory (:meth:`models.registry.ModelRegistry.path_of`)."""
    load: Callable[[Path], Scorer]
    """Load, check and warm a model directory (runs on ``loader``)."""
    loader: Executor
    metrics: Metrics
    timeout_s: float = 120.0
    wall_clock_ms: Callable[[], int] = now_ms
    _plan: ServingPlan = field(default_factory=lambda: fixed_plan(None))
    _loaded: dict[str, Scorer] = field(default_factory=dict)
    _failed: dict[str, str] = field(default_factory=dict)
    _loading: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _snapshot: ControlSnapshot | None = None
    _stopped_here: dict[str, str] = field(default_factory=dict)
    """Experiments this worker's guard rail rolled back, until the control topic says so."""
    _synced_once: asyncio.Event = field(default_factory=asyncio.Event)

    def plan(self) -> ServingPlan:
        """The plan in force now (one immutable object: read it once per micro-batch)."""
        return self._plan

    @property
    def synced(self) -> bool:
        """The control topic was read, and the promoted version (if any) is serving or failed."""
        snapshot = self._snapshot
        if snapshot is None:
            return False
        promoted = snapshot.promotion.version if snapshot.promotion else None
        return (promoted is None or promoted == TRENDING_VERSION
                or self._plan.default.version == promoted or promoted in self._failed)

    async def wait_synced(self) -> None:
        """Return once the control topic was read and the promoted version settled (loaded
        or failed), the first time; at once ever after. The state agent waits here before
        its first micro-batch, so no user is scored before the worker knows what to serve
        (e.g. as trending, outside the running experiment, right after a restart)."""
        await self._synced_once.wait()

    def apply(self, snapshot: ControlSnapshot) -> None:
        """Take the control topic's current state: load what is missing (in the background),
        drop what is no longer named, rebuild the plan from what is loaded. Call it on the
        event loop."""
        self._snapshot = snapshot
        wanted = set(snapshot.versions_needed())
        for version in sorted(wanted - set(self._loaded) - set(self._loading)
                              - set(self._failed)):
            self._loading[version] = asyncio.get_running_loop().create_task(
                self._load(version), name=f"load model {version}")
        for version in set(self._failed) - wanted:
            del self._failed[version]
        for name in list(self._stopped_here):
            experiment = snapshot.experiments.get(name)
            if experiment is None or not experiment.is_running:
                del self._stopped_here[name]
        self._rebuild()
        # The version promoted before stays loaded while it is loaded: a rollback is instant.
        previous = set(snapshot.promotion.history[:1]) if snapshot.promotion else set()
        for version in set(self._loaded) - wanted - previous - {self._plan.default.version}:
            del self._loaded[version]  # the plan that used it, if any, is gone

    def stop_here(self, experiment: str, reason: str) -> None:
        """Stop serving ``experiment`` on this worker now (the guard rail announces it on the
        control topic too; this covers the time until that record comes back)."""
        self._stopped_here[experiment] = reason
        self._rebuild()

    def status(self) -> dict[str, Any]:
        """For ``/readyz``: what serves, what is loading, what failed and why."""
        snapshot = self._snapshot
        running = snapshot.running() if snapshot is not None else None
        return {
            **self._plan.describe(),
            "control_topic_read": snapshot is not None,
            "loading": sorted(self._loading),
            "failed": dict(sorted(self._failed.items())),
            "experiment_waiting": (
                None if running is None or self._plan.experiment is not None
                else self._waiting_reason(running)),
        }

    async def _load(self, version: str) -> None:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            path = self.locate(version)
            scorer = await asyncio.wait_for(
                loop.run_in_executor(self.loader, self.load, path), self.timeout_s)
        except Exception as exc:  # any failure: the version never serves, the old one stays
            message = (f"took longer than {self.timeout_s:g} s" if isinstance(
                exc, TimeoutError) else f"{type(exc).__name__}: {exc}")[:500]
            log.error("model version %s failed to load and will not serve (the serving "
                      "version stays): %s. See RUNBOOK StreamrecModelLoadFailed.",
                      version, message)
            self._failed[version] = message
            self.metrics.model_loads.labels(outcome="failed").inc()
        else:
            seconds = time.perf_counter() - started
            log.info("model version %s loaded, checked and warmed in %.2f s", version, seconds)
            self._loaded[version] = scorer
            self.metrics.model_loads.labels(outcome="ok").inc()
            self.metrics.model_load_seconds.observe(seconds)
        finally:
            self._loading.pop(version, None)
        if self._snapshot is not None:
            self.apply(self._snapshot)

    def _rebuild(self) -> None:
        snapshot = self._snapshot
        old = self._plan
        default = old.default
        if snapshot is not None:
            promoted = snapshot.promotion.version if snapshot.promotion else None
            if promoted is None or promoted == TRENDING_VERSION:
                default = Arm(None, promoted)
            elif promoted in self._loaded:
                default = Arm(self._loaded[promoted], promoted)
        experiment, arms, shadow = None, {}, None
        running = snapshot.running() if snapshot is not None else None
        if running is not None and running.name not in self._stopped_here:
            resolved = {v.name: self._arm(running, v.name, v.version)
                        for v in running.variants}
            if all(arm is not None for arm in resolved.values()):
                experiment = running
                arms = {name: arm for name, arm in resolved.items() if arm is not None}
                if running.shadow is not None:
                    shadow = self._arm(running, running.shadow.name, running.shadow.version)
        self._plan = ServingPlan(default, experiment, MappingProxyType(arms), shadow)
        self.metrics.model_load_failed.set(len(self._failed))
        if self.synced:
            self._synced_once.set()
        if default.version != old.default.version:
            self._swapped(default, snapshot)
        if (experiment is None) != (old.experiment is None) or (
                experiment is not None and old.experiment is not None
                and experiment.name != old.experiment.name):
            log.info("experiment %s", "off" if experiment is None else
                     f"{experiment.name} serving: "
                     + ", ".join(f"{n}={a.version}" for n, a in arms.items()))

    def _arm(self, experiment: Experiment, variant: str, version: str) -> Arm | None:
        if version == TRENDING_VERSION:
            return Arm(None, version, experiment.name, variant)
        scorer = self._loaded.get(version)
        return None if scorer is None else Arm(scorer, version, experiment.name, variant)

    def _waiting_reason(self, running: Experiment) -> str:
        if running.name in self._stopped_here:
            return f"rolled back here: {self._stopped_here[running.name]}"
        versions = [v.version for v in running.variants]
        failed = [v for v in versions if v in self._failed]
        if failed:
            return f"not served: version(s) {', '.join(failed)} failed to load"
        return "loading its variants"

    def _swapped(self, default: Arm, snapshot: ControlSnapshot | None) -> None:
        metrics = self.metrics
        metrics.model_swaps.inc()
        scorer = default.scorer
        metrics.model_info.info({
            "name": "" if scorer is None else scorer.name,
            "version": default.version or "",
            "provider": "" if scorer is None else str(getattr(scorer, "provider", "unknown")),
        })
        metrics.model_loaded_timestamp_seconds.set(time.time())
        promotion = snapshot.promotion if snapshot is not None else None
        if promotion is not None and promotion.version == default.version:
            lag_s = max(0.0, (self.wall_clock_ms() - promotion.promoted_at_ms) / 1000)
            metrics.promotion_to_serving_seconds.observe(lag_s)
            log.info("now serving version %s (%s, %.2f s after it was promoted)",
                     default.version, promotion.reason, lag_s)
