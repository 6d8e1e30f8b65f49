"""The sampled gauges' arithmetic: consumer lag per partition, state size on disk."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from streams.ops.metrics import create_metrics
from streams.ops.observe import (
    LagUpdate,
    apply_lag,
    directory_bytes,
    lag_samples,
    trending_items,
)
from streams.state.trending import record_many


class TP(NamedTuple):  # the shape of faust.types.TP
    topic: str
    partition: int


WATCHED = {"views", "events-by-user"}
T0 = 1_795_456_800_000


def test_lag_is_high_watermark_minus_committed_next_offset() -> None:
    # Records 0..119 written (high watermark 120); Faust committed 100 = next to consume.
    update = lag_samples([TP("views", 0)], {TP("views", 0): 120}, {TP("views", 0): 100},
                         WATCHED)
    assert update.values == {("views", 0): 20}


def test_caught_up_is_zero_not_minus_one() -> None:
    update = lag_samples([TP("views", 0)], {TP("views", 0): 120}, {TP("views", 0): 120},
                         WATCHED)
    assert update.values == {("views", 0): 0}


def test_nothing_committed_counts_from_offset_zero() -> None:
    # Faust stores both "never committed" and "committed 0" as None.
    update = lag_samples([TP("views", 0), TP("views", 1)],
                         {TP("views", 0): 7, TP("views", 1): 0}, {TP("views", 0): None},
                         WATCHED)
    assert update.values == {("views", 0): 7, ("views", 1): 0}


def test_unwatched_topics_and_unknown_high_watermarks_are_left_out() -> None:
    assignment = [TP("views", 0), TP("app-users-changelog", 0), TP("events-by-user", 1)]
    update = lag_samples(assignment, {TP("app-users-changelog", 0): 50, TP("views", 0): None},
                         {}, WATCHED)
    assert update.values == {}
    assert update.stale == frozenset()


def test_revoked_partitions_are_stale_and_held_ones_are_not() -> None:
    exported = {("views", 0), ("views", 1), ("events-by-user", 3)}
    # After a rebalance this worker holds views[1] (no fetch answered yet) and views[2].
    update = lag_samples([TP("views", 1), TP("views", 2)], {TP("views", 2): 5}, {}, WATCHED,
                         exported=exported)
    assert update.values == {("views", 2): 5}
    assert update.stale == {("views", 0), ("events-by-user", 3)}


def test_a_committed_offset_past_a_stale_high_watermark_is_not_negative() -> None:
    update = lag_samples([TP("views", 0)], {TP("views", 0): 10}, {TP("views", 0): 12}, WATCHED)
    assert update.values == {("views", 0): 0}


@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["views", "clicks", "events-by-user"]), st.integers(0, 5)),
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**6) | st.none()),
        max_size=12,
    ),
    st.sets(st.tuples(st.sampled_from(["views", "clicks"]), st.integers(0, 5)), max_size=6),
)
def test_lag_properties(offsets: dict[tuple[str, int], tuple[int, int | None]],
                        exported: set[tuple[str, int]]) -> None:
    assignment = [TP(*key) for key in offsets]
    highwaters = {TP(*key): hw for key, (hw, _) in offsets.items()}
    committed = {TP(*key): c for key, (_, c) in offsets.items()}
    update = lag_samples(assignment, highwaters, committed, WATCHED, exported)
    held = {key for key in offsets if key[0] in WATCHED}
    assert set(update.values) == held
    assert all(lag >= 0 for lag in update.values.values())
    assert all(update.values[key] <= offsets[key][0] for key in update.values)
    assert update.stale == exported - held
    assert not update.stale & set(update.values)


def exposition_lines(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines()
            if line.startswith("streamrec_consumer_lag_messages{")]


def test_apply_lag_sets_and_removes_label_sets() -> None:
    registry = CollectorRegistry()
    gauge = create_metrics(registry).consumer_lag
    exported: set[tuple[str, int]] = set()
    apply_lag(gauge, LagUpdate({("views", 0): 3, ("views", 1): 0}, frozenset()), exported)
    assert exported == {("views", 0), ("views", 1)}
    assert exposition_lines(registry) == [
        'streamrec_consumer_lag_messages{partition="0",topic="views"} 3.0',
        'streamrec_consumer_lag_messages{partition="1",topic="views"} 0.0',
    ]
    # views[0] moved to another worker; a label set never exported is removed quietly too.
    apply_lag(gauge, LagUpdate({("views", 1): 4}, frozenset({("views", 0), ("views", 9)})),
              exported)
    assert exported == {("views", 1)}
    assert exposition_lines(registry) == [
        'streamrec_consumer_lag_messages{partition="1",topic="views"} 4.0',
    ]


def test_directory_bytes_sums_files_recursively(tmp_path: Path) -> None:
    (tmp_path / "users-0.db").mkdir()
    (tmp_path / "users-0.db" / "000012.sst").write_bytes(b"x" * 1000)
    (tmp_path / "users-0.db" / "LOG").write_bytes(b"y" * 24)
    (tmp_path / "trending-1.db" / "nested").mkdir(parents=True)
    (tmp_path / "trending-1.db" / "nested" / "000003.log").write_bytes(b"z" * 7)
    (tmp_path / "link").symlink_to(tmp_path / "users-0.db")  # not followed: counted once
    assert directory_bytes(tmp_path) == 1031


def test_directory_bytes_of_a_missing_directory_is_zero(tmp_path: Path) -> None:
    assert directory_bytes(tmp_path / "not-created-yet") == 0


def test_docstring_examples_run() -> None:
    import doctest

    import streams.ops.observe

    result = doctest.testmod(streams.ops.observe)
    assert result.attempted > 0 and result.failed == 0


def test_trending_items_counts_every_board_and_skips_an_undecodable_one() -> None:
    board = record_many(None, [("i1", 1.0, T0), ("i2", 1.0, T0)], 3600.0, 100)
    other = record_many(None, [("i3", 1.0, T0)], 3600.0, 100)
    corrupt = b'{"v": 1, "h": '  # a board cut short on disk
    assert trending_items([board.to_bytes(), corrupt, other.to_bytes()]) == 3
    assert trending_items([b'{"v": 99}']) == 0  # a newer format reads as empty too
