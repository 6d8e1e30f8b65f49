"""The worker's HTTP endpoints on Faust's web server.

``/metrics`` Prometheus text format · ``/healthz`` liveness · ``/readyz`` readiness (tables
recovered, model loaded, broker reachable: :mod:`streams.ops.health`) · ``/users/{user_id}`` a
user's state and last recommendation, which can be switched off or put behind a bearer token.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streams.ops.health import Readiness
from streams.state.batch import UserRecord
from streams.state.bounds import StateDecodeError


@dataclass(frozen=True)
class UsersApi:
    """``/users/{user_id}``: served at all, and the bearer token it requires (if any)."""

    enabled: bool = True
    token: str | None = None


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


def register_views(
    app: Any,
    *,
    registry: CollectorRegistry,
    readiness: Readiness,
    users: Any,
    users_api: UsersApi,
) -> None:
    """Mount the HTTP views on the Faust app's web server, and the broker probe's timer."""
    health = readiness.broker

    @app.timer(health.interval_s)
    async def probe_broker() -> None:
        await health.probe_once()

    @app.page("/metrics")
    async def metrics(self: Any, request: Any) -> Any:
        # aiohttp refuses a content_type with a charset; pass the header as it is.
        return self.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(self: Any, request: Any) -> Any:
        return self.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(self: Any, request: Any) -> Any:
        body = readiness.status()
        return self.json(body, status=200 if body["ready"] else 503)

    if not users_api.enabled:
        return

    @app.page("/users/{user_id}")
    async def user(self: Any, request: Any, user_id: str) -> Any:
        if users_api.token is not None and not _authorised(
            request.headers.get("Authorization", ""), users_api.token
        ):
            return self.json({"error": "unauthorised"}, status=401)
        stored = users.get(user_id.encode("utf-8"))
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
