"""Ledger / Shown: recording with a capacity, lookups, and the compact encoding."""

from __future__ import annotations

import orjson
import pytest

from streams.attribution.ledger import InvalidLedgerError, Ledger, Shown
from streams.state.bounds import InvalidBoundsError, StateDecodeError

T0 = 1_795_456_800_000


def shown(rec_id: str, *items: str, at: int = T0,
          credited: frozenset[tuple[str, str]] = frozenset()) -> Shown:
    return Shown(rec_id, at, "exp-1", "B", "gru4rec", "3", items, credited)


def test_an_empty_ledger_has_no_latest_and_finds_nothing() -> None:
    assert Ledger().latest() is None
    assert Ledger().find("r1") is None


def test_record_appends_the_latest_and_keeps_the_newest_capacity() -> None:
    ledger = Ledger()
    for i in range(5):
        ledger = ledger.record(shown(f"r{i}", "a"), capacity=3)
    assert [s.recommendation_id for s in ledger.shown] == ["r2", "r3", "r4"]
    assert ledger.latest() == shown("r4", "a")
    assert ledger.find("r3") == shown("r3", "a")
    assert ledger.find("r1") is None  # evicted


def test_record_below_capacity_keeps_everything() -> None:
    ledger = Ledger((shown("r0", "a"), shown("r1", "a")))
    assert [s.recommendation_id for s in ledger.record(shown("r2"), 8).shown] == [
        "r0", "r1", "r2"]
    assert ledger.record(shown("r2"), 1).shown == (shown("r2"),)


def test_record_leaves_the_old_ledger_untouched() -> None:
    before = Ledger((shown("r0", "a"),))
    before.record(shown("r1", "b"), 1)
    assert before.shown == (shown("r0", "a"),)


@pytest.mark.parametrize("capacity", [0, -1, 1.0, True, "8"])
def test_record_needs_a_capacity_of_at_least_one(capacity: object) -> None:
    with pytest.raises(InvalidBoundsError, match="LEDGER_SIZE"):
        Ledger().record(shown("r1", "a"), capacity)  # type: ignore[arg-type]


def test_recording_an_id_again_replaces_it_and_keeps_its_credits() -> None:
    first = shown("r1", "a", "b", credited=frozenset({("a", "click"), ("b", "purchase")}))
    ledger = Ledger((first, shown("r2", "c"))).record(shown("r1", "a", "d"), capacity=8)
    assert [s.recommendation_id for s in ledger.shown] == ["r2", "r1"]
    assert ledger.latest() == shown("r1", "a", "d", credited=frozenset({("a", "click")}))


def test_find_returns_the_newest_of_an_id() -> None:
    ledger = Ledger((shown("r1", "a"), shown("r1", "b")))  # never recorded like this
    assert ledger.find("r1") == shown("r1", "b")


def test_position_is_one_based_and_none_for_an_item_not_shown() -> None:
    s = shown("r1", "a", "b", "c")
    assert (s.position("a"), s.position("c"), s.position("z")) == (1, 3, None)


@pytest.mark.parametrize("credited", [("z", "click"), ("a", "view"), ("a", "search")])
def test_a_shown_cannot_credit_an_item_it_did_not_show_or_an_unattributed_type(
    credited: tuple[str, str]
) -> None:
    with pytest.raises(InvalidLedgerError):
        shown("r1", "a", credited=frozenset({credited}))


# --- encoding ------------------------------------------------------------------------------


def test_an_empty_ledger_is_no_bytes() -> None:
    assert Ledger().to_bytes() == b""
    assert Ledger.from_bytes(b"") == Ledger()


def test_layout_stores_items_once_and_credits_by_index_and_type_code() -> None:
    ledger = Ledger((
        Shown("r1", T0, None, None, "trending", "1", ("a", "b")),
        shown("r2", "b", "c", at=T0 + 5,
              credited=frozenset({("c", "purchase"), ("b", "click"), ("c", "add_to_cart")})),
    ))
    raw = ledger.to_bytes()
    assert raw == (
        b'1\n["r1",1795456800000,null,null,"trending","1",["a","b"],[]]\n'
        b'["r2",1795456800005,"exp-1","B","gru4rec","3",["b","c"],[[0,1],[1,2],[1,3]]]'
    )
    assert Ledger.from_bytes(raw) == ledger


def test_a_repeated_item_is_credited_at_its_first_position() -> None:
    ledger = Ledger((shown("r1", "a", "b", "a", credited=frozenset({("a", "click")})),))
    assert orjson.loads(ledger.to_bytes().split(b"\n")[1])[7] == [[0, 1]]
    assert Ledger.from_bytes(ledger.to_bytes()) == ledger


def test_newlines_in_values_are_escaped_so_lines_stay_entries() -> None:
    ledger = Ledger((Shown("r\n1", T0, "e\nx", None, "m\n", "1", ("a\nb", "\n")),))
    assert ledger.to_bytes().count(b"\n") == 1
    assert Ledger.from_bytes(ledger.to_bytes()) == ledger


def test_entries_read_from_bytes_are_written_back_as_read() -> None:
    stored = b'1\n[ "r1", 1, null, null, "m", "1", ["a"], [] ]\n["r2",2,null,null,"m","1",["b"],[]]'
    ledger = Ledger.from_bytes(stored)
    assert ledger.to_bytes() == stored
    recorded = ledger.record(shown("r3", "c", at=3), capacity=2)
    assert recorded.to_bytes() == (
        b'1\n["r2",2,null,null,"m","1",["b"],[]]\n'
        b'["r3",3,"exp-1","B","gru4rec","3",["c"],[]]'
    )
    credited = ledger.with_credited({"r1": [("a", "click")], "r9": [("a", "click")]})
    assert credited.to_bytes() == (
        b'1\n["r1",1,null,null,"m","1",["a"],[[0,1]]]\n["r2",2,null,null,"m","1",["b"],[]]'
    )
    assert ledger.with_credited({}).to_bytes() == stored


def test_with_credited_adds_keys_by_recommendation_id() -> None:
    ledger = Ledger((shown("r1", "a", "b"), shown("r2", "b")))
    after = ledger.with_credited({"r1": {("b", "purchase")}, "r2": [], "r3": [("b", "click")]})
    assert after.shown == (
        shown("r1", "a", "b", credited=frozenset({("b", "purchase")})), shown("r2", "b"))
    assert ledger == Ledger((shown("r1", "a", "b"), shown("r2", "b")))  # untouched
    with pytest.raises(InvalidLedgerError):
        ledger.with_credited({"r2": [("a", "click")]})


@pytest.mark.parametrize(
    "payload",
    [
        b"{",
        b"[]",
        b"null",
        b"1",  # no recommendations
        b"1\n",
        b"2\n[\"r1\",1,null,null,\"m\",\"1\",[\"a\"],[]]",  # a newer format
        b'{"v":1,"s":[]}',
        b"1\n{}",
        b"1\n[]",
        b'1\n["r1",1,null,null,"m","1",["a"]]',  # 7 fields
        b'1\n["r1",1.5,null,null,"m","1",["a"],[]]',  # float time
        b'1\n["r1",true,null,null,"m","1",["a"],[]]',  # bool time
        b'1\n[1,1,null,null,"m","1",["a"],[]]',  # int id
        b'1\n["r1",1,7,null,"m","1",["a"],[]]',  # int experiment
        b'1\n["r1",1,null,null,"m","1",["a",2],[]]',  # int item
        b'1\n["r1",1,null,null,"m","1","a",[]]',  # items not a list
        b'1\n["r1",1,null,null,"m","1",["a"],[[1,1]]]',  # index out of range
        b'1\n["r1",1,null,null,"m","1",["a"],[[-1,1]]]',
        b'1\n["r1",1,null,null,"m","1",["a"],[[0,0]]]',  # view: not attributed
        b'1\n["r1",1,null,null,"m","1",["a"],[[0,9]]]',
        b'1\n["r1",1,null,null,"m","1",["a"],[[0,true]]]',
        b'1\n["r1",1,null,null,"m","1",["a"],[[0,1.0]]]',
        b'1\n["r1",1,null,null,"m","1",["a"],[[0]]]',
        b'1\n["r1",1,null,null,"m","1",["a"],[0,1]]',
        b'1\n["r1",1,null,null,"m","1",["a"],null]',
        b'1\n["r1",1,null,null,"m","1",["a"],[]]\n',  # an empty line
        b'1\n["r1",1,null,null,"m","1",["\xff"],[]]',  # not UTF-8
    ],
)
def test_corrupt_bytes_are_a_state_decode_error(payload: bytes) -> None:
    with pytest.raises(StateDecodeError):
        Ledger.from_bytes(payload)
