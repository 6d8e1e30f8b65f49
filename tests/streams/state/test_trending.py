"""The trending board: exact half-life decay, capacity and eviction, top-k order, bytes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.state.bounds import InvalidBoundsError, StateDecodeError
from streams.state.trending import TrendingBoard, record, record_many, top

HOUR_MS = 3_600_000
T0 = 1_795_456_800_000
PROFILE = settings(max_examples=100, deadline=None)


def board_of(*events: tuple[str, float, int], capacity: int = 100, half_life_s: float = 3600):
    board = None
    for item, weight, time_ms in events:
        board = record(board, item, weight, time_ms, half_life_s, capacity)
    assert board is not None
    return board


def test_score_halves_every_half_life() -> None:
    board = board_of(("a", 8.0, T0))
    assert board.score("a", T0) == 8.0
    assert board.score("a", T0 + HOUR_MS) == 4.0
    assert board.score("a", T0 + 3 * HOUR_MS) == 1.0
    assert board.score("a", T0 + HOUR_MS // 2) == pytest.approx(8 / math.sqrt(2), rel=1e-12)
    assert board.score("missing", T0) == 0.0


def test_scores_add_up_with_their_own_decay() -> None:
    board = board_of(("a", 1.0, T0), ("a", 1.0, T0 + HOUR_MS), ("a", 2.0, T0 - HOUR_MS))
    # at T0 + 1h: 1/2 + 1 + 2/4
    assert board.score("a", T0 + HOUR_MS) == pytest.approx(2.0, rel=1e-12)


@PROFILE
@given(
    # Offsets keep every exponent within a float's range (2 ** +-1000 at most).
    st.lists(
        st.tuples(st.sampled_from("abc"), st.floats(0.01, 100), st.integers(-3 * 10**7, 3 * 10**7)),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from([60.0, 3600.0, 86_400.0]),
    st.integers(-3 * 10**7, 3 * 10**7),
)
def test_score_matches_the_definition(
    events: list[tuple[str, float, int]], half_life_s: float, now_offset: int
) -> None:
    events = [(item, weight, T0 + offset) for item, weight, offset in events]
    board = board_of(*events, half_life_s=half_life_s)
    now = T0 + now_offset
    for item in "abc":
        expected = sum(w * 2 ** (-(now - t) / (half_life_s * 1000)) for i, w, t in events
                       if i == item)
        assert board.score(item, now) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_top_orders_by_current_score_then_item_id() -> None:
    now = T0 + 2 * HOUR_MS
    board = board_of(("old", 8.0, T0), ("new", 4.0, now), ("tie", 2.0, now), ("alsotie", 2.0, now))
    # "old" has decayed from 8 to 2: a three-way tie, broken by item id.
    assert top(board, 10, now) == [("new", 4.0), ("alsotie", 2.0), ("old", 2.0), ("tie", 2.0)]
    assert top(board, 2, now) == [("new", 4.0), ("alsotie", 2.0)]
    assert top(board, 2, now, exclude={"new", "unknown"}) == [("alsotie", 2.0), ("old", 2.0)]
    assert top(board, 0, now) == []
    assert top(None, 5, now) == []
    assert top(TrendingBoard.empty(), 5, now) == []


def test_ranking_does_not_depend_on_when_you_ask() -> None:
    board = board_of(("a", 3.0, T0), ("b", 1.0, T0 + HOUR_MS), ("c", 5.0, T0 - HOUR_MS))
    orders = {tuple(i for i, _ in top(board, 3, T0 + k * HOUR_MS)) for k in range(-5, 50, 7)}
    assert orders == {("a", "c", "b")}  # at T0 + 1h: 1.5, 1.25, 1


def test_capacity_evicts_the_lowest_current_score() -> None:
    board = board_of(("a", 8.0, T0), ("b", 1.0, T0), ("c", 2.0, T0), capacity=2)
    assert set(board.entries) == {"a", "c"}
    # An hour later "a" is worth 4 and "c" 1: a new item worth 2 pushes "c" out.
    board = record(board, "d", 2.0, T0 + HOUR_MS, 3600, 2)
    assert set(board.entries) == {"a", "d"}
    # A newcomer below everything on a full board is itself evicted.
    board = record(board, "e", 0.5, T0 + HOUR_MS, 3600, 2)
    assert set(board.entries) == {"a", "d"}


@PROFILE
@given(
    st.lists(st.tuples(st.sampled_from("abcdefgh"), st.floats(0.1, 10), st.integers(0, 10**8)),
             max_size=40),
    st.integers(1, 5),
)
def test_board_never_exceeds_capacity(events: list[tuple[str, float, int]], capacity: int) -> None:
    board = None
    for item, weight, offset in events:
        board = record(board, item, weight, T0 + offset, 3600, capacity)
        assert len(board) <= capacity
        assert item in board or len(board) == capacity


@PROFILE
@given(
    st.lists(st.tuples(st.sampled_from("abcdef"), st.floats(0.1, 10), st.integers(0, 10**8)),
             max_size=30),
)
def test_record_many_equals_record_one_by_one_without_eviction(
    events: list[tuple[str, float, int]],
) -> None:
    events = [(item, weight, T0 + offset) for item, weight, offset in events]
    one_by_one = board_of(*events, capacity=10) if events else TrendingBoard.empty()
    batched = record_many(None, events, 3600, 10)
    assert batched.entries.keys() == one_by_one.entries.keys()
    for item in batched.entries:
        assert batched.score(item, T0) == pytest.approx(one_by_one.score(item, T0), rel=1e-12)


def test_record_many_evicts_once_at_the_end() -> None:
    board = record_many(None, [("a", 1.0, T0), ("b", 5.0, T0), ("a", 9.0, T0)], 3600, 1)
    # One by one, "a" would have been evicted by "b" before its second event.
    assert top(board, 5, T0) == [("a", pytest.approx(10.0, rel=1e-12))]
    one_by_one = board_of(("a", 1.0, T0), ("b", 5.0, T0), ("a", 9.0, T0), capacity=1)
    assert top(one_by_one, 5, T0) == [("a", pytest.approx(9.0, rel=1e-12))]


def test_record_is_pure() -> None:
    board = board_of(("a", 1.0, T0))
    before = board.to_bytes()
    record(board, "b", 1.0, T0, 3600, 1)
    record(board, "a", 1.0, T0, 3600, 10)
    assert board.to_bytes() == before
    with pytest.raises(TypeError):
        board.entries["z"] = (0.0, 0)


def test_changing_the_half_life_keeps_current_scores() -> None:
    board = board_of(("a", 8.0, T0), ("b", 2.0, T0 + HOUR_MS))
    now = T0 + HOUR_MS
    faster = record_many(board, [], 1800, 10)
    assert faster.half_life_s == 1800
    assert faster.score("a", now) == pytest.approx(4.0, rel=1e-12)
    assert faster.score("b", now) == pytest.approx(2.0, rel=1e-12)
    assert faster.score("a", now + 1_800_000) == pytest.approx(2.0, rel=1e-12)


def test_no_overflow_far_from_the_reference() -> None:
    ten_years = 10 * 365 * 24 * HOUR_MS
    board = board_of(("a", 1.0, T0), ("a", 1.0, T0 + ten_years), half_life_s=60)
    assert board.score("a", T0 + ten_years) == pytest.approx(1.0)
    assert math.isfinite(board.score("a", T0 - ten_years))
    assert top(board, 1, T0 + 2 * ten_years)[0][1] == 0.0


def test_empty_board_takes_its_reference_from_the_first_event() -> None:
    board = record(TrendingBoard.empty(), "a", 1.0, T0, 3600, 10)
    assert board.reference_ms == T0


@PROFILE
@given(
    st.lists(st.tuples(st.text(max_size=5), st.floats(1e-6, 1e6), st.integers(-10**12, 10**12)),
             max_size=20),
    st.floats(1.0, 1e6),
)
def test_bytes_round_trip_exactly(events: list[tuple[str, float, int]], half_life_s: float) -> None:
    board = record_many(None, [(i, w, T0 + t) for i, w, t in events], half_life_s, 15)
    assert TrendingBoard.from_bytes(board.to_bytes()) == board


@pytest.mark.parametrize(
    "raw",
    [b"", b"{}", b'{"v": 9}', b'{"v": 1, "h": 0, "r": 0, "e": {}}',
     b'{"v": 1, "h": 60, "r": 0, "e": {"a": ["x", 1]}}', b'{"v": 1, "h": 60, "r": 0.5, "e": {}}'],
)
def test_corrupt_board_bytes(raw: bytes) -> None:
    with pytest.raises(StateDecodeError):
        TrendingBoard.from_bytes(raw)


@pytest.mark.parametrize(
    ("weight", "half_life_s", "capacity"),
    [(0.0, 3600, 10), (-1.0, 3600, 10), (math.nan, 3600, 10), (1.0, 0, 10), (1.0, math.inf, 10),
     (1.0, 3600, 0), (1.0, 3600, 2.5)],
)
def test_impossible_arguments(weight: float, half_life_s: float, capacity: int) -> None:
    with pytest.raises(InvalidBoundsError):
        record(None, "a", weight, T0, half_life_s, capacity)


def test_the_stored_bytes_keep_their_format() -> None:
    """Boards in changelogs written by earlier versions read back, and new ones read the
    same: the format is pinned byte for byte."""
    board = record_many(None, [("a", 2.0, T0), ("b", 1.0, T0 + 3_600_000)], 3600.0, 10)
    assert board.to_bytes() == (
        b'{"v":1,"h":3600.0,"r":%d,"e":{"a":[1.0,%d],"b":[1.0,%d]}}'
        % (T0, T0, T0 + 3_600_000))
