"""Stored user state across format versions: what v1 (before searches and purchase times)
wrote still reads, and v2 is what gets written. The same for the user record around it:
format 1 (no attribution ledger) still reads, format 2 is what gets written."""

from __future__ import annotations

import orjson

from schemas.events import Event, EventType
from streams.attribution.ledger import Ledger, Shown
from streams.state.batch import RECORD_FORMAT_VERSION, UserRecord
from streams.state.bounds import StateBounds
from streams.state.user_state import (
    READABLE_FORMAT_VERSIONS,
    STATE_FORMAT_VERSION,
    EventCounts,
    EventRef,
    Interaction,
    Purchase,
    Search,
    UserState,
    apply_event,
)

# Written by UserState.to_bytes() of the format-1 code (streamrec before search events) for
# view sku-1, purchase sku-2, click sku-3, purchase sku-4, add_to_cart sku-5 at 1..5 s in
# session s1. Never regenerate: these are the bytes RocksDB and changelogs hold today.
V1_STATE = (
    b'{"v":1,"r":[["sku-1",0,1000],["sku-2",3,2000],["sku-3",1,3000],["sku-4",3,4000],'
    b'["sku-5",2,5000]],"c":[1,1,1,2],"p":["sku-2","sku-4"],"s":"s1","ss":1000,'
    b'"n":["e5",2,5000],"d":["e1","e2","e3","e4","e5"],"a":5}'
)
V1_RECORD = b"\x00\x00\x00\xd0" + V1_STATE + b'{"x":1}'  # UserRecord(state, b'{"x":1}')

# Written by UserRecord.to_bytes() of record format 2 (the first with an attribution ledger):
# V1_DECODED rewritten as state v2, the ledger below, recommendation b'{"x":1}'. Never
# regenerate.
V2_STATE = (
    b'{"v":2,"r":[["sku-1",0,1000],["sku-2",3,2000],["sku-3",1,3000],["sku-4",3,4000],'
    b'["sku-5",2,5000]],"q":[],"c":[1,1,1,2,0],"p":[["sku-2",5000],["sku-4",5000]],"s":"s1",'
    b'"ss":1000,"n":["e5",2,5000],"d":["e1","e2","e3","e4","e5"],"a":5}'
)
V2_LEDGER = b'1\n["r1",4000,"exp-1","B","gru4rec","3",["sku-6","sku-3"],[[1,1]]]'
FORMAT2_RECORD = (
    b"\xff\x02\x00\x00\x00\xe7\x00\x00\x00\x41" + V2_STATE + V2_LEDGER + b'{"x":1}'
)
LEDGER_DECODED = Ledger((
    Shown("r1", 4000, "exp-1", "B", "gru4rec", "3", ("sku-6", "sku-3"),
          frozenset({("sku-3", "click")})),
))

V1_DECODED = UserState(
    recent=(
        Interaction("sku-1", "view", 1000),
        Interaction("sku-2", "purchase", 2000),
        Interaction("sku-3", "click", 3000),
        Interaction("sku-4", "purchase", 4000),
        Interaction("sku-5", "add_to_cart", 5000),
    ),
    searches=(),
    counts=EventCounts(view=1, click=1, add_to_cart=1, purchase=2, search=0),
    # v1 kept no purchase times: they read as the record's newest event time
    purchases=(Purchase("sku-2", 5000), Purchase("sku-4", 5000)),
    session_id="s1",
    session_started_ms=1000,
    newest_event=EventRef("e5", "add_to_cart", 5000),
    recent_event_ids=("e1", "e2", "e3", "e4", "e5"),
    events_applied=5,
)


def test_versions() -> None:
    assert STATE_FORMAT_VERSION == 2
    assert READABLE_FORMAT_VERSIONS == (1, 2)


def test_a_v1_state_still_decodes() -> None:
    state = UserState.from_bytes(V1_STATE)
    assert state == V1_DECODED
    assert state.purchased == ("sku-2", "sku-4")


def test_a_v1_user_record_still_decodes() -> None:
    record = UserRecord.from_bytes(V1_RECORD)
    assert record == UserRecord(V1_DECODED, b'{"x":1}')
    assert record.ledger == Ledger()


def test_a_format1_record_is_rewritten_as_format2() -> None:
    assert RECORD_FORMAT_VERSION == 2
    record = UserRecord.from_bytes(V1_RECORD)
    rewritten = UserRecord(record.state, record.last_recommendation, LEDGER_DECODED)
    assert rewritten.to_bytes() == FORMAT2_RECORD


def test_a_format2_record_decodes() -> None:
    assert UserRecord.from_bytes(FORMAT2_RECORD) == UserRecord(
        V1_DECODED, b'{"x":1}', LEDGER_DECODED)


def test_a_v1_state_is_rewritten_as_v2_and_takes_new_events() -> None:
    state = UserState.from_bytes(V1_STATE)
    search = Event("s6", EventType.SEARCH, "u1", None, 6000, "s1",
                   properties={"query": "boots"})
    after = apply_event(state, search, StateBounds()).state
    raw = after.to_bytes()
    assert orjson.loads(raw)["v"] == 2
    assert UserState.from_bytes(raw) == after
    assert after.searches == (Search("boots", 6000),)
    assert after.counts == EventCounts(view=1, click=1, add_to_cart=1, purchase=2, search=1)


def test_v2_layout() -> None:
    state = UserState(
        recent=(Interaction("sku-1", "view", 1000),),
        searches=(Search("red shoes", 2000),),
        counts=EventCounts(view=1, purchase=1, search=1),
        purchases=(Purchase("sku-2", 1500),),
        session_id="s1",
        session_started_ms=1000,
        newest_event=EventRef("e3", "search", 2000),
        recent_event_ids=("e1", "e2", "e3"),
        events_applied=3,
    )
    raw = state.to_bytes()
    assert raw == (
        b'{"v":2,"r":[["sku-1",0,1000]],"q":[["red shoes",2000]],"c":[1,0,0,1,1],'
        b'"p":[["sku-2",1500]],"s":"s1","ss":1000,"n":["e3",4,2000],"d":["e1","e2","e3"],'
        b'"a":3}'
    )
    assert UserState.from_bytes(raw) == state
