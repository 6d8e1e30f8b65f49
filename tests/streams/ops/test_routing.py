"""``/users/{id}`` routing: who owns a user, what a request does, what a worker advertises.

The two-worker behaviour itself is tested end to end in
``tests/integration/test_users_routing.py``.
"""

from __future__ import annotations

import socket
from typing import Any

import faust
import pytest
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.kafka.partitioning import user_partition
from streams.ops.routing import Owner, Route, advertised_host, locate, route

CHANGELOG = "streamrec-users-changelog"
ME, PEER = "http://10.0.0.7:6066", "http://10.0.0.8:6066"


class FakeAssignor:
    """The two things :func:`locate` reads from Faust's partition assignor."""

    def __init__(self, mine: set[int], distribution: dict[str, set[int]]) -> None:
        self.mine = mine
        self.distribution = distribution

    def assigned_actives(self) -> set[TP]:
        return {TP(CHANGELOG, p) for p in self.mine} | {TP("views", p) for p in range(4)}

    def table_metadata(self, topic: str) -> dict[str, dict[str, list[int]]]:
        assert topic == CHANGELOG
        return {url: {CHANGELOG: sorted(ps)} for url, ps in self.distribution.items()}


def user_on(partition: int, partitions: int = 4) -> str:
    return next(f"user-{n}" for n in range(10_000)
                if user_partition(f"user-{n}", partitions) == partition)


def where(user: str, assignor: FakeAssignor) -> Owner:
    return locate(user, partitions=4, changelog_topic=CHANGELOG, assignor=assignor,
                  own_url=ME)


def test_a_user_on_one_of_my_partitions_is_local() -> None:
    assignor = FakeAssignor({0, 1}, {ME: {0, 1}, PEER: {2, 3}})
    assert where(user_on(1), assignor) == Owner(1, local=True)


def test_a_user_on_a_peers_partition_is_forwarded_to_its_advertised_url() -> None:
    assignor = FakeAssignor({0, 1}, {ME: {0, 1}, PEER: {2, 3}})
    owner = where(user_on(3), assignor)
    assert owner == Owner(3, local=False, url=PEER) and owner.known


def test_nobody_known_before_the_first_assignment() -> None:
    owner = where(user_on(2), FakeAssignor(set(), {}))
    assert owner == Owner(2, local=False) and not owner.known


def test_metadata_naming_me_for_a_partition_i_do_not_hold_is_not_trusted() -> None:
    # The group's metadata is older than this worker's own assignment.
    owner = where(user_on(2), FakeAssignor({0}, {ME: {0, 2}, PEER: {1, 3}}))
    assert owner == Owner(2, local=False)


def test_a_single_worker_owns_everyone() -> None:
    assignor = FakeAssignor({0, 1, 2, 3}, {ME: {0, 1, 2, 3}})
    assert all(where(user_on(p), assignor).local for p in range(4))


@pytest.mark.parametrize(("owner", "forwarded", "settling", "expected"), [
    (Owner(0, local=True), False, False, Route.LOCAL),
    (Owner(0, local=True), True, False, Route.LOCAL),  # forwarded to the right worker
    (Owner(0, local=True), False, True, Route.RETRY),  # a miss could be "not restored yet"
    (Owner(0, local=False, url=PEER), False, False, Route.FORWARD),
    (Owner(0, local=False, url=PEER), False, True, Route.FORWARD),  # the owner decides
    (Owner(0, local=False, url=PEER), True, False, Route.RETRY),  # never a second hop
    (Owner(0, local=False), False, False, Route.RETRY),  # owner unknown: rebalancing
])
def test_route(owner: Owner, forwarded: bool, settling: bool, expected: Route) -> None:
    assert route(owner, forwarded=forwarded, settling=settling) is expected


# --- Faust's own key -> partition agrees with ours -------------------------------------------

@pytest.fixture(scope="module")
def users_table() -> Any:
    app = faust.App("routing-test", broker="kafka://127.0.0.1:1", store="memory://",
                    key_serializer="raw", value_serializer="raw")
    return app.Table("users", default=None, key_type=bytes, value_type=bytes, partitions=4)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="utf-8"), min_size=1, max_size=64), st.integers(1, 64))
def test_faust_routes_a_table_key_to_the_same_partition(
    users_table: Any, user_id: str, partitions: int
) -> None:
    """What ``@app.table_route`` would compute: the changelog topic's key serialiser, then
    aiokafka's default partitioner over the partitions in order."""
    key = users_table.changelog_topic.prepare_key(user_id, None)[0]
    assert key == user_id.encode("utf-8")
    faust_partition = DefaultPartitioner()(key, list(range(partitions)), [])
    assert faust_partition == user_partition(user_id, partitions)


# --- what a worker advertises ----------------------------------------------------------------

def fake_resolver(monkeypatch: pytest.MonkeyPatch, name: str, address: str | None) -> None:
    def resolve(host: str) -> str:
        assert host == name
        if address is None:
            raise socket.gaierror("unknown host")
        return address

    monkeypatch.setattr(socket, "gethostname", lambda: name)
    monkeypatch.setattr(socket, "gethostbyname", resolve)


def test_a_specific_bind_address_is_advertised_as_it_is() -> None:
    assert advertised_host("127.0.0.1") == "127.0.0.1"
    assert advertised_host("10.1.2.3") == "10.1.2.3"


def test_a_wildcard_bind_advertises_the_pod_ip(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_resolver(monkeypatch, "streamrec-worker-0", "10.244.1.17")
    assert advertised_host("0.0.0.0") == "10.244.1.17"
    assert advertised_host("::") == "10.244.1.17"


def test_a_loopback_or_unresolvable_name_is_advertised_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_resolver(monkeypatch, "build-box", "127.0.1.1")  # Debian's /etc/hosts
    assert advertised_host("0.0.0.0") == "build-box"
    fake_resolver(monkeypatch, "lonely", None)
    assert advertised_host("0.0.0.0") == "lonely"


def test_the_worker_advertises_a_reachable_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bound to every interface (the default), the worker's canonical URL is not 0.0.0.0:
    with that, every pod would take every other pod's URL for its own."""
    from streams.app import create_faust_app
    from streams.settings import Settings

    fake_resolver(monkeypatch, "streamrec-worker-1", "10.244.2.9")
    app = create_faust_app(Settings(web_host="0.0.0.0", web_port=6066))
    assert str(app.conf.canonical_url) == "http://10.244.2.9:6066"
    assert app.conf.web_bind == "0.0.0.0"



def test_the_docstring_examples_run() -> None:
    import doctest

    import streams.ops.routing

    result = doctest.testmod(streams.ops.routing)
    assert result.attempted > 0 and result.failed == 0
