"""The worker's HTTP endpoints on Faust's web server.

``/metrics`` Prometheus text format · ``/healthz`` liveness · ``/readyz`` readiness (tables
recovered, model loaded, broker reachable: :mod:`streams.health`) · ``/users/{user_id}`` a
user's state and last recommendation, which can be switched off or put behind a bearer token.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.health import BrokerHealth, aiokafka_connector
from streams.state.batch import UserRecord
from streams.state.bounds import StateDecodeError

if TYPE_CHECKING:
    from streams.app import Worker


def user_view(user_id: str, record: UserRecord) -> dict[str, Any]:
    """The JSON document ``/users/{user_id}`` answers with.

    Raises :class:`StateDecodeError` when the stored last recommendation is not JSON.
    """
    state = record.state
    try:
        last = orjson.loads(record.last_recommendation) if record.last_recommendation else None
    except orjson.JSONDecodeError as exc:
        raise StateDecodeError(f"stored last recommendation is not JSON: {exc}") from exc
    return {
        "user_id": user_id,
        "counts": dict(state.counts),
        "recent": [
            {"item_id": item, "event_type": event_type, "event_time_ms": time_ms}
            for item, event_type, time_ms in state.recent
        ],
        "purchased": list(state.purchased),
        "session_id": state.session_id,
        "last_event_ms": state.last_event_ms,
        "events_applied": state.events_applied,
        "last_recommendation": last,
    }


def broker_health(worker: Worker) -> BrokerHealth:
    """The worker's broker probe: the one ``create_worker`` made, else a new one."""
    if worker.broker_health is None:
        worker.broker_health = BrokerHealth(aiokafka_connector(worker.app))
    return worker.broker_health


def register_views(worker: Worker) -> None:
    app, settings = worker.app, worker.settings
    health = broker_health(worker)

    @app.timer(health.interval_s)
    async def probe_broker() -> None:
        await health.probe_once()

    @app.page("/metrics")
    async def metrics(self: Any, request: Any) -> Any:
        # aiohttp refuses a content_type with a charset; pass the header as it is.
        return self.bytes(
            generate_latest(worker.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    @app.page("/healthz")
    async def healthz(self: Any, request: Any) -> Any:
        return self.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(self: Any, request: Any) -> Any:
        ready = worker.is_ready()
        body = {
            "ready": ready,
            "broker": health.status(),
            "recovering": bool(app.tables.recovery.in_recovery),  # type: ignore[attr-defined]  # Faust's TableManagerT omits it
            "rebalancing": bool(app.rebalancing),
            "model": worker.scorer.name if worker.scorer else None,
            "model_error": worker.model_error,
        }
        return self.json(body, status=200 if ready else 503)

    if not settings.users_api_enabled:
        return

    @app.page("/users/{user_id}")
    async def users(self: Any, request: Any, user_id: str) -> Any:
        if settings.users_api_token is not None and not _authorised(
            request.headers.get("Authorization", ""), settings.users_api_token
        ):
            return self.json({"error": "unauthorised"}, status=401)
        stored = worker.users.get(user_id.encode("utf-8"))
        if stored is None:
            return self.json({"error": "unknown user", "user_id": user_id}, status=404)
        try:
            view = user_view(user_id, UserRecord.from_bytes(stored))
        except StateDecodeError as exc:
            return self.json({"error": f"stored state cannot be decoded: {exc}",
                              "user_id": user_id}, status=500)
        return self.json(view)


def _authorised(header: str, token: str) -> bool:
    scheme, _, presented = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented, token)
