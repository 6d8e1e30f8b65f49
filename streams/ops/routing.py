"""Which worker holds a user's state, for ``/users/{user_id}`` behind a load balancer.

A user's state lives in one partition of the ``users`` table, on the one worker that owns
that partition: ``user_partition(user_id)``, the partition the ingest agent sent the user's
events to, and the changelog partition their state is written to. Behind a Kubernetes
Service a request can reach any worker, so :func:`locate` says whether this worker owns
the user, which worker does (the URL it advertised to the consumer group), or that nobody
is known to own it now (a rebalance is moving partitions), and the view answers locally,
forwards the request, or answers 503 with ``Retry-After``.

Why not Faust's ``@app.table_route``: it finds the same partition (Faust's key serialiser
gives the UTF-8 bytes of the id and aiokafka's default partitioner is the same murmur2, see
``tests/streams/ops/test_routing.py``), but it takes the partition count from the
producer's topic metadata, which does not hold the changelog topic until this worker has
written to it (a ``TypeError``, answered 500); it forwards with no guard against two
workers with different views of the assignment sending a request back and forth; and an
owner that does not answer becomes a 500 instead of a 503 to retry.

Each worker advertises ``http://<web host>:<web port>`` to the group (Faust's
``canonical_url``). A worker bound to every interface (``0.0.0.0``, the default) cannot
advertise that: :func:`advertised_host` gives the address its host name resolves to, which
in Kubernetes and Docker Compose is the pod's or container's own IP.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from enum import Enum
from typing import Any

from streams.kafka.partitioning import user_partition

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def advertised_host(bind_host: str) -> str:
    """The host other workers use to reach a server bound to ``bind_host``.

    A specific address is advertised as it is. For a wildcard bind, the address this
    machine's host name resolves to (the pod IP in Kubernetes, whose ``/etc/hosts`` maps the
    pod name to it), or the host name itself when it does not resolve or resolves to a
    loopback address. Where neither reaches this machine from the others, set
    ``STREAMREC_WEB_HOST`` to an address of this machine that they can reach.

    >>> advertised_host("10.0.0.7")
    '10.0.0.7'
    >>> advertised_host("0.0.0.0") != "0.0.0.0"
    True
    """
    if bind_host not in WILDCARD_HOSTS:
        return bind_host
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        return name
    # Debian maps the host name to 127.0.1.1: other machines cannot use that, but they may
    # resolve the name through DNS (and on this machine it still reaches us).
    return name if ipaddress.ip_address(address).is_loopback else address


@dataclass(frozen=True)
class Owner:
    """Where a user's state is served right now."""

    partition: int
    local: bool
    """This worker owns the partition."""
    url: str | None = None
    """The owning worker's advertised URL, when another worker owns it; None when this
    worker does, or when no worker is known to (a rebalance is under way)."""

    @property
    def known(self) -> bool:
        return self.local or self.url is not None


def locate(user_id: str, *, partitions: int, changelog_topic: str, assignor: Any,
           own_url: str) -> Owner:
    """The owner of ``user_id``'s state, from the consumer group's last assignment.

    ``assignor`` is the Faust app's partition assignor: its ``assigned_actives()`` are this
    worker's partitions and ``table_metadata(changelog_topic)`` maps every worker's
    advertised URL to its active partitions of the table.
    """
    partition = user_partition(user_id, partitions)
    for tp in assignor.assigned_actives():
        if tp.topic == changelog_topic and tp.partition == partition:
            return Owner(partition, local=True)
    for url, topics in assignor.table_metadata(changelog_topic).items():
        if partition in topics.get(changelog_topic, ()):
            # Our own URL here but not among our actives: the metadata is older than our
            # assignment; nobody is known to own it.
            return Owner(partition, local=False, url=None if str(url) == own_url else str(url))
    return Owner(partition, local=False)


class Route(Enum):
    """What ``/users/{id}`` does with a request (:func:`route`)."""

    LOCAL = "local"
    """Answer from this worker's table."""
    FORWARD = "forward"
    """Ask the owning worker and pass its answer back."""
    RETRY = "retry"
    """503 with ``Retry-After``: nobody can answer for this user now."""


def route(owner: Owner, *, forwarded: bool, settling: bool) -> Route:
    """Where a request for a user owned by ``owner`` goes.

    ``forwarded``: another worker already forwarded this request (it is never forwarded a
    second time: two workers whose views of a changing assignment differ would otherwise
    pass it back and forth). ``settling``: this worker is rebalancing or recovering its
    tables, so its own partitions may not be fully restored (a miss would be a false 404).

    >>> route(Owner(0, local=True), forwarded=False, settling=False)
    <Route.LOCAL: 'local'>
    >>> route(Owner(0, local=False, url="http://10.0.0.8:6066"), forwarded=True, settling=False)
    <Route.RETRY: 'retry'>
    """
    if owner.local:
        return Route.RETRY if settling else Route.LOCAL
    if owner.url is not None and not forwarded:
        return Route.FORWARD
    return Route.RETRY
