"""apply_batch / UserRecord / update_trending: one micro-batch folded into users and the board."""

from __future__ import annotations

import contextlib
from collections import Counter

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import Event, EventType
from streams.attribution.ledger import Ledger, Shown
from streams.state.batch import (
    RECORD_FORMAT_VERSION,
    UserRecord,
    apply_batch,
    group_by_user,
    read_record,
    update_trending,
)
from streams.state.bounds import StateBounds, StateDecodeError
from streams.state.trending import TrendingBoard, top
from streams.state.user_state import Outcome, UserState, apply_events

T0 = 1_795_456_800_000
BOUNDS = StateBounds(reorder_window_s=300.0)
WEIGHTS = {"view": 1.0, "click": 2.0, "purchase": 8.0}  # add_to_cart missing: weight 1.0


def ev(eid: str, user: str, item: str, time_ms: int, kind: EventType = EventType.VIEW) -> Event:
    return Event(eid, kind, user, item, time_ms)


def folded(*events: Event) -> UserState:
    state = apply_events(None, events, BOUNDS).state
    assert state is not None
    return state


class Store:
    """An in-memory ``users`` table that counts reads."""

    def __init__(self, records: dict[str, UserRecord] | None = None) -> None:
        self.records = records or {}
        self.reads: Counter[str] = Counter()

    def load(self, user_id: str) -> UserRecord | None:
        self.reads[user_id] += 1
        return self.records.get(user_id)


# --- UserRecord ----------------------------------------------------------------------------


LEDGER = Ledger((
    Shown("r1", T0, None, None, "trending", "1", ("a", "b")),
    Shown("r2", T0 + 5, "exp-1", "B", "gru4rec", "3", ("b", "c"),
          frozenset({("c", "purchase"), ("b", "click")})),
))


@pytest.mark.parametrize(
    "recommendation",
    [None, b'{"user_id": "u1", "items": []}', b"\x00\x00\x00\xff binary, header-like",
     b"\xff\x02 magic-like"],
)
@pytest.mark.parametrize("ledger", [Ledger(), LEDGER])
def test_user_record_round_trips(recommendation: bytes | None, ledger: Ledger) -> None:
    record = UserRecord(folded(ev("e1", "u1", "a", T0), ev("e2", "u1", "b", T0 + 1)),
                        recommendation, ledger)
    assert UserRecord.from_bytes(record.to_bytes()) == record


def test_the_ledger_defaults_to_empty() -> None:
    record = UserRecord(folded(ev("e1", "u1", "a", T0)), b"REC")
    assert record.ledger == Ledger()


def test_user_record_layout() -> None:
    state = folded(ev("e1", "u1", "a", T0))
    state_bytes, ledger_bytes = state.to_bytes(), LEDGER.to_bytes()
    assert RECORD_FORMAT_VERSION == 2
    assert UserRecord(state, b"REC", LEDGER).to_bytes() == (
        b"\xff\x02" + len(state_bytes).to_bytes(4, "big") + len(ledger_bytes).to_bytes(4, "big")
        + state_bytes + ledger_bytes + b"REC"
    )
    assert UserRecord(state).to_bytes() == (  # an empty ledger takes no bytes
        b"\xff\x02" + len(state_bytes).to_bytes(4, "big") + bytes(4) + state_bytes
    )


@pytest.mark.parametrize("recommendation", [None, b"REC", b"\xff\x02"])
def test_a_record_in_the_format_before_the_ledger_reads_with_an_empty_ledger(
    recommendation: bytes | None
) -> None:
    state = folded(ev("e1", "u1", "a", T0))
    state_bytes = state.to_bytes()
    legacy = len(state_bytes).to_bytes(4, "big") + state_bytes + (recommendation or b"")
    assert UserRecord.from_bytes(legacy) == UserRecord(state, recommendation, Ledger())


def test_a_corrupt_state_in_a_record_raises_state_decode_error() -> None:
    with pytest.raises(StateDecodeError):
        UserRecord.from_bytes(b"\x00\x00\x00\x05{bad}rest")
    with pytest.raises(StateDecodeError):
        UserRecord.from_bytes(b"\xff\x02\x00\x00\x00\x05\x00\x00\x00\x00{bad}rest")


def test_a_corrupt_ledger_in_a_record_raises_state_decode_error() -> None:
    state = folded(ev("e1", "u1", "a", T0)).to_bytes()
    payload = (b"\xff\x02" + len(state).to_bytes(4, "big") + (5).to_bytes(4, "big")
               + state + b"{bad}" + b"REC")
    with pytest.raises(StateDecodeError, match="ledger"):
        UserRecord.from_bytes(payload)


def test_a_record_of_an_unknown_format_raises_state_decode_error() -> None:
    payload = UserRecord(folded(ev("e1", "u1", "a", T0))).to_bytes()
    with pytest.raises(StateDecodeError, match="format 3"):
        UserRecord.from_bytes(b"\xff\x03" + payload[2:])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 400))
def test_damaged_records_decode_or_raise_state_decode_error(noise: bytes, cut: int) -> None:
    """So does the TTL sweep's read of the newest event time, which agrees with the full
    decode wherever both read a record."""
    valid = UserRecord(folded(ev("e1", "u1", "a", T0)), b"REC", LEDGER).to_bytes()
    for payload in (noise, b"\xff" + noise, b"\xff\x02" + noise, valid[:cut],
                    valid[:cut] + noise):
        full: int | None = None
        with contextlib.suppress(StateDecodeError):
            full = UserRecord.from_bytes(payload).state.last_event_ms
        with contextlib.suppress(StateDecodeError):
            newest = UserRecord.newest_event_ms(payload)
            assert full is None or newest == full


# --- apply_batch ---------------------------------------------------------------------------


def test_each_user_is_read_once_and_folded_in_arrival_order() -> None:
    events = [
        ev("a1", "alice", "x", T0),
        ev("b1", "bob", "y", T0),
        ev("a2", "alice", "z", T0 + 1_000),
        ev("b2", "bob", "x", T0 - 1_000),  # out of order, within the reorder window
    ]
    store = Store()
    update = apply_batch(events, store.load, BOUNDS)
    assert store.reads == {"alice": 1, "bob": 1}
    assert update.users == {
        "alice": UserRecord(folded(events[0], events[2])),
        "bob": UserRecord(folded(events[1], events[3])),
    }
    assert update.fresh_events == [events[0], events[2], events[1], events[3]]  # user by user
    assert update.outcomes == {Outcome.APPLIED: 4}


def test_stored_state_last_recommendation_and_ledger_carry_over() -> None:
    earlier = ev("a1", "alice", "x", T0)
    store = Store({"alice": UserRecord(folded(earlier), b"last-rec", LEDGER)})
    new = ev("a2", "alice", "y", T0 + 1_000)
    update = apply_batch([new], store.load, BOUNDS)
    assert update.users["alice"] == UserRecord(folded(earlier, new), b"last-rec", LEDGER)
    assert update.users["alice"].ledger is LEDGER


def test_duplicates_are_counted_and_not_fresh() -> None:
    stored = ev("a1", "alice", "x", T0)
    store = Store({"alice": UserRecord(folded(stored), b"rec")})
    new = ev("a2", "alice", "y", T0 + 1)
    batch = [stored, new, new]  # one redelivered from before, one twice in this batch
    update = apply_batch(batch, store.load, BOUNDS)
    assert update.outcomes == {Outcome.DUPLICATE: 2, Outcome.APPLIED: 1}
    assert update.fresh_events == [new]
    assert update.users["alice"].state == folded(stored, new)


def test_a_user_whose_events_were_all_duplicates_is_still_rewritten_unchanged() -> None:
    stored_state = folded(ev("a1", "alice", "x", T0))
    store = Store({"alice": UserRecord(stored_state, b"rec", LEDGER)})
    update = apply_batch([ev("a1", "alice", "x", T0)], store.load, BOUNDS)
    assert update.users == {"alice": UserRecord(stored_state, b"rec", LEDGER)}
    assert update.fresh_events == []
    assert update.outcomes == {Outcome.DUPLICATE: 1}


def test_late_events_count_and_are_fresh() -> None:
    store = Store()
    newest = ev("a1", "alice", "x", T0)
    late = ev("a0", "alice", "old", T0 - 3_600_000, EventType.PURCHASE)
    update = apply_batch([newest, late], store.load, BOUNDS)
    assert update.outcomes == {Outcome.APPLIED: 1, Outcome.LATE: 1}
    assert update.fresh_events == [newest, late]  # trending still counts a late event
    assert update.users["alice"].state.purchased == ("old",)


def test_group_by_user_keeps_arrival_order() -> None:
    events = [ev("1", "u", "a", 3), ev("2", "v", "a", 1), ev("3", "u", "b", 2)]
    assert group_by_user(events) == {"u": [events[0], events[2]], "v": [events[1]]}


# --- update_trending ----------------------------------------------------------------------


def test_update_trending_weights_each_fresh_event_by_its_type() -> None:
    store = Store({"alice": UserRecord(folded(ev("dup", "alice", "dup-item", T0)))})
    batch = [
        ev("dup", "alice", "dup-item", T0),  # duplicate: must not reach the board
        ev("v1", "alice", "a", T0),
        ev("c1", "bob", "a", T0, EventType.CLICK),
        ev("p1", "bob", "b", T0, EventType.PURCHASE),
        ev("k1", "carol", "c", T0, EventType.ADD_TO_CART),  # no weight given: 1.0
    ]
    update = apply_batch(batch, store.load, BOUNDS)
    before = TrendingBoard.empty()
    board = update_trending(before, update.fresh_events, WEIGHTS, 3600.0, capacity=10)
    assert top(board, 10, T0) == [("b", 8.0), ("a", 3.0), ("c", 1.0)]
    assert len(before) == 0  # the old board is left untouched


def test_searches_change_state_but_never_reach_the_trending_board() -> None:
    store = Store()
    searched = Event("s1", EventType.SEARCH, "alice", None, T0 + 1,
                     properties={"query": "red shoes"})
    update = apply_batch([ev("v1", "alice", "a", T0), searched], store.load, BOUNDS)
    state = update.users["alice"].state
    assert state.newest_event.event_id == "s1" and state.counts["search"] == 1
    assert [entry.item_id for entry in state.recent] == ["a"]
    assert update.fresh_events == [ev("v1", "alice", "a", T0), searched]
    board = update_trending(TrendingBoard.empty(), update.fresh_events, WEIGHTS, 3600.0, 10)
    assert top(board, 10, T0) == [("a", 1.0)]
    only_searches = update_trending(TrendingBoard.empty(), [searched], WEIGHTS, 3600.0, 10)
    assert len(only_searches) == 0


def test_update_trending_decays_and_respects_capacity() -> None:
    board = update_trending(
        TrendingBoard.empty(),
        [ev("1", "u", "old", T0 - 3_600_000, EventType.PURCHASE),  # 8 one half-life ago
         ev("2", "u", "new", T0, EventType.CLICK),
         ev("3", "u", "tiny", T0)],
        WEIGHTS,
        3600.0,
        capacity=2,
    )
    assert top(board, 10, T0) == [("old", 4.0), ("new", 2.0)]


@pytest.mark.parametrize("payload", [b"", b"\x00\x00", b"\x00\x00\x00\x40{}"])
def test_a_short_or_truncated_record_is_a_decode_error(payload: bytes) -> None:
    with pytest.raises(StateDecodeError):
        UserRecord.from_bytes(payload)


def test_read_record_reads_a_stored_record_and_none_for_a_missing_one() -> None:
    record = UserRecord(state=folded(ev("e1", "u1", "a", 1_000)), last_recommendation=b"{}",
                        ledger=LEDGER)
    discarded: list[StateDecodeError] = []
    assert read_record(record.to_bytes(), discarded.append) == record
    assert read_record(None, discarded.append) is None
    assert read_record(b"", discarded.append) is None
    assert discarded == []


def test_read_record_hands_an_undecodable_record_to_discard_and_reads_it_as_absent() -> None:
    discarded: list[StateDecodeError] = []
    assert read_record(b"\x00\x00\x00\x05{bad}", discarded.append) is None
    assert len(discarded) == 1 and isinstance(discarded[0], StateDecodeError)


# --- UserRecord.newest_event_ms (the TTL sweep's read) -------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 10**9),
                          st.sampled_from(list(EventType))), min_size=1, max_size=12),
       st.booleans())
def test_newest_event_ms_is_what_the_full_decode_says(
        steps: list[tuple[str, int, EventType]], legacy: bool) -> None:
    events = [Event(f"e{n}", kind, "u1", None if kind is EventType.SEARCH else item, T0 + t,
                    properties={"query": "q"} if kind is EventType.SEARCH else None)
              for n, (item, t, kind) in enumerate(steps)]
    state = folded(*events)
    payload = (len(state.to_bytes()).to_bytes(4, "big") + state.to_bytes() if legacy
               else UserRecord(state, b"REC", LEDGER).to_bytes())
    assert UserRecord.newest_event_ms(payload) == UserRecord.from_bytes(payload) \
        .state.last_event_ms


def test_newest_event_ms_rejects_a_state_without_a_newest_event_time() -> None:
    state = orjson.loads(folded(ev("e1", "u1", "a", T0)).to_bytes())
    for bad in ({**state, "n": ["e1", 0, "late"]}, {**state, "n": ["e1", 0, True]},
                {**state, "n": []}, {k: v for k, v in state.items() if k != "n"},
                {**state, "v": 99}):
        raw = orjson.dumps(bad)
        with pytest.raises(StateDecodeError):
            UserRecord.newest_event_ms(len(raw).to_bytes(4, "big") + raw)
