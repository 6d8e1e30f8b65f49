"""The worker's HTTP endpoints on Faust's web server.

``/metrics`` Prometheus text format (``?name[]=<sample name>``, repeatable, answers only those
families, as ``prometheus_client``'s own handler does: a cheap poll for a few counters) ·
``/healthz`` liveness · ``/readyz`` readiness (tables recovered, model loaded, broker
reachable: :mod:`streams.ops.health`) · ``/users/{user_id}`` a user's state and last
recommendation, which can be switched off or put behind a bearer token.

``/users/{user_id}`` answers on every worker: the one that owns the user's partition answers
from its table, any other forwards the request there (:mod:`streams.ops.routing`) and passes
the answer back; ``X-Streamrec-Served-By`` names the worker that answered. While no worker
is known to own the partition (a rebalance, a recovery), or the owner does not answer, the
answer is 503 with ``Retry-After``, never a 404 that would claim the user does not exist.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streams.ops.health import Readiness
from streams.ops.routing import Owner, Route, locate, route
from streams.state.batch import UserRecord
from streams.state.bounds import StateDecodeError

log = logging.getLogger(__name__)

FORWARDED_BY = "X-Streamrec-Forwarded-By"
"""Set on a request one worker forwards to another: the receiver never forwards it again
(two workers with different views of a changing assignment would bounce it forever)."""
SERVED_BY = "X-Streamrec-Served-By"
"""On every ``/users`` answer: the advertised URL of the worker that answered."""
RETRY_AFTER_S = 1
FORWARD_TIMEOUT_S = 5.0


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


METRIC_NAME_PARAM = "name[]"


def exposition(registry: CollectorRegistry, names: Sequence[str] = ()) -> bytes:
    """The registry in Prometheus text format; with ``names`` (sample names such as
    ``streamrec_recommendations_emitted_total``), only the families holding them: only
    those collectors run, so a frequent poll of a few counters stays cheap."""
    if names:
        return generate_latest(registry.restricted_registry(names))
    return generate_latest(registry)


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
        body = exposition(registry, request.query.getall(METRIC_NAME_PARAM, []))
        return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(self: Any, request: Any) -> Any:
        return self.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(self: Any, request: Any) -> Any:
        body = readiness.status()
        return self.json(body, status=200 if body["ready"] else 503)

    if not users_api.enabled:
        return

    own_url = str(app.conf.canonical_url)
    changelog_topic = users.changelog_topic.get_topic_name()
    partitions = users.partitions or app.conf.topic_partitions

    @app.page("/users/{user_id}")
    async def user(self: Any, request: Any, user_id: str) -> Any:
        if users_api.token is not None and not _authorised(
            request.headers.get("Authorization", ""), users_api.token
        ):
            return self.json({"error": "unauthorised"}, status=401)
        owner = locate(user_id, partitions=partitions, changelog_topic=changelog_topic,
                       assignor=app.assignor, own_url=own_url)
        where = route(owner, forwarded=FORWARDED_BY in request.headers, settling=_settling(app))
        if where is Route.FORWARD:
            return await _forward(self, app, request, owner, own_url)
        served_by = {SERVED_BY: own_url}
        if where is Route.RETRY:
            return self.json(
                {"error": "no worker serves this user's partition right now (partitions are "
                          "being reassigned or recovered); retry", "user_id": user_id,
                 "partition": owner.partition},
                status=503, headers={"Retry-After": str(RETRY_AFTER_S), **served_by})
        stored = users.get(user_id.encode("utf-8"))
        if stored is None:
            return self.json({"error": "unknown user", "user_id": user_id}, status=404,
                             headers=served_by)
        try:
            view = user_view(user_id, UserRecord.from_bytes(stored))
        except StateDecodeError as exc:
            return self.json({"error": f"stored state cannot be decoded: {exc}",
                              "user_id": user_id}, status=500, headers=served_by)
        return self.json(view, headers=served_by)


def _settling(app: Any) -> bool:
    """Partitions are being reassigned, or this worker's tables are still being recovered:
    a local miss may only mean "not restored yet"."""
    recovery = app.tables.recovery
    return bool(app.rebalancing or recovery.in_recovery or not recovery.completed.is_set())


async def _forward(view: Any, app: Any, request: Any, owner: Owner, own_url: str) -> Any:
    """Ask the owning worker and pass its answer back (status, body, ``Retry-After``)."""
    import aiohttp
    from yarl import URL

    target = URL(owner.url or "").join(request.rel_url)
    headers = {FORWARDED_BY: own_url, "Accept": "application/json"}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    try:
        async with app.http_client.get(
            target, headers=headers, allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S),
        ) as response:
            body = await response.read()
            passed = {name: response.headers[name] for name in ("Retry-After", SERVED_BY)
                      if name in response.headers}
            return view.bytes(body, status=response.status,
                              content_type=response.content_type, headers=passed)
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning("forwarding /users to the owner of partition %d (%s) failed: %s",
                    owner.partition, owner.url, exc)
        return view.json(
            {"error": f"the worker serving this user's partition did not answer: {exc}",
             "partition": owner.partition},
            status=503, headers={"Retry-After": str(RETRY_AFTER_S), SERVED_BY: own_url})


def _authorised(header: str, token: str) -> bool:
    scheme, _, presented = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented, token)
