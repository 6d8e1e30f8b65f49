"""Broker connectivity for readiness: a cheap metadata request, on a timer.

Faust's own state says nothing about the broker between rebalances: a worker whose broker
went away keeps reporting "recovered, not rebalancing" while it can neither consume nor
produce. :class:`BrokerHealth` asks the cluster for its metadata every ``interval_s`` with
its own small client (one extra connection per worker) and calls the broker reachable while
the last successful answer is at most ``stale_after_s`` old. ``/readyz`` answers 503 when it
is not, so a load balancer or Kubernetes stops routing to the worker, and 200 again as soon
as the broker answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


class MetadataClient(Protocol):
    async def fetch_all_metadata(self) -> Any: ...
    async def close(self) -> None: ...


@dataclass
class BrokerHealth:
    """Reachability of the broker, refreshed by :meth:`probe_once`."""

    connect: Callable[[], Awaitable[MetadataClient]]
    """Makes a bootstrapped client (raises when no broker answers)."""
    interval_s: float = 1.0
    timeout_s: float = 2.0
    stale_after_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    last_ok: float | None = None
    last_error: str | None = None
    _client: MetadataClient | None = field(default=None, repr=False)

    @property
    def reachable(self) -> bool:
        """A metadata request succeeded within the last ``stale_after_s`` seconds."""
        return self.last_ok is not None and self.clock() - self.last_ok <= self.stale_after_s

    async def probe_once(self) -> bool:
        """One metadata request (connecting first if needed); never raises."""
        try:
            if self._client is None:
                self._client = await asyncio.wait_for(self.connect(), self.timeout_s)
            await asyncio.wait_for(self._client.fetch_all_metadata(), self.timeout_s)
        except Exception as exc:  # any failure means "not reachable now"; keep probing
            was_reachable = self.reachable
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if was_reachable or self.last_ok is None:
                log.warning("broker not reachable: %s", self.last_error)
            await self._drop_client()
            return False
        if self.last_error is not None:
            log.warning("broker reachable again")
        self.last_ok, self.last_error = self.clock(), None
        return True

    def status(self) -> dict[str, Any]:
        """For ``/readyz``: reachable, seconds since the last good answer, last error."""
        return {
            "reachable": self.reachable,
            "last_ok_s_ago": None if self.last_ok is None
            else round(self.clock() - self.last_ok, 1),
            "error": self.last_error,
        }

    async def close(self) -> None:
        await self._drop_client()

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception:  # closing a broken client is best effort
                log.debug("closing the health client failed", exc_info=True)


def aiokafka_connector(app: Any, timeout_s: float = 2.0
                       ) -> Callable[[], Awaitable[MetadataClient]]:
    """A ``connect`` for :class:`BrokerHealth` using the Faust app's brokers and credentials
    (TLS/SASL alike)."""
    from aiokafka import AIOKafkaClient
    from faust.transport.drivers import aiokafka as faust_aiokafka

    async def connect() -> MetadataClient:
        servers = faust_aiokafka.server_list(app.conf.broker, 9092)
        auth = faust_aiokafka.credentials_to_aiokafka_auth(
            app.conf.broker_credentials, app.conf.ssl_context)
        client = AIOKafkaClient(bootstrap_servers=servers, client_id="streamrec-health",
                                request_timeout_ms=int(timeout_s * 1000), **auth)
        try:
            await client.bootstrap()
        except BaseException:
            await client.close()
            raise
        return client

    return connect


@dataclass
class Readiness:
    """What ``/readyz`` and the ``streamrec_ready`` gauge report: tables recovered, not
    rebalancing, the model loaded when one is configured, and the broker answering."""

    app: Any
    """The Faust app (its table recovery and rebalancing state)."""
    broker: BrokerHealth
    model_required: bool
    """True when ``STREAMREC_MODEL_DIR`` is set: no model loaded means not ready."""
    model_name: Callable[[], str | None]
    """The name of the model serving now, None when none is."""
    catalog: Callable[[], dict[str, Any]] = dict
    """The catalogue's state for the body (informative: not part of readiness, a shop may
    publish no catalogue)."""
    models_synced: Callable[[], bool] = lambda: True
    """With a model registry: the control topic was read and the promoted version is serving
    (or failed to load, which ``models`` says); until then not ready."""
    models: Callable[[], dict[str, Any]] | None = None
    """With a model registry: what serves in which role, what is loading, what failed."""

    def is_ready(self) -> bool:
        recovery = self.app.tables.recovery
        recovered = recovery.completed.is_set() and not recovery.in_recovery
        model_ok = (not self.model_required or self.model_name() is not None
                    ) and self.models_synced()
        return bool(recovered and not self.app.rebalancing and model_ok
                    and self.broker.reachable)

    def status(self) -> dict[str, Any]:
        """The ``/readyz`` body."""
        return {
            "ready": self.is_ready(),
            "broker": self.broker.status(),
            "recovering": bool(self.app.tables.recovery.in_recovery),
            "rebalancing": bool(self.app.rebalancing),
            "model": self.model_name(),
            "catalog": self.catalog(),
            **({"models": self.models()} if self.models is not None else {}),
        }
