"""score_users: one model call per batch, trending fallbacks with the right reason."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pytest

from schemas.items import Item
from streams.candidates.session import Candidates
from streams.catalog.catalog import Catalog
from streams.catalog.records import CatalogRecord
from streams.scoring.scorer import (
    FALLBACK_NO_HISTORY,
    FALLBACK_NO_MODEL,
    FALLBACK_SCORING_ERROR,
    FALLBACK_UNKNOWN_ITEMS,
    Retrieval,
    Scored,
    Scorer,
    ScoringReport,
    rank_users,
    score_users,
)
from streams.state.trending import TrendingBoard, record_many

NOW_MS = 1_795_456_800_000
# Scores at NOW_MS equal the weights (all recorded at NOW_MS).
BOARD = record_many(
    None,
    [("hot", 8.0, NOW_MS), ("warm", 4.0, NOW_MS), ("mild", 2.0, NOW_MS), ("cool", 1.0, NOW_MS)],
    half_life_s=3600.0,
    capacity=100,
)


@dataclass
class RecordedCall:
    histories: list[list[str]]
    k: int
    exclude: list[set[str]]
    thread: str


@dataclass
class FakeScorer:
    """A model that recommends ``"<last item>+1"``, ``"<last item>+2"``... and records calls."""

    name: str = "fake"
    version: str = "7"
    fail_with: Exception | None = None
    drop_last_row: bool = False
    unknown: frozenset[str] = frozenset()
    calls: list[RecordedCall] = field(default_factory=list)

    def knows(self, item_id: str) -> bool:
        return item_id not in self.unknown

    def recommend(
        self,
        histories: Sequence[Sequence[str]],
        k: int,
        exclude: Sequence[Collection[str]],
    ) -> list[list[tuple[str, float]]]:
        self.calls.append(RecordedCall(
            [list(h) for h in histories], k, [set(e) for e in exclude],
            threading.current_thread().name,
        ))
        if self.fail_with is not None:
            raise self.fail_with
        rows = [[(f"{h[-1]}+{r}", float(k - r)) for r in range(1, k + 1)] for h in histories]
        return rows[:-1] if self.drop_last_row else rows


def score(
    candidates: dict[str, Candidates],
    scorer: Scorer | None,
    board: TrendingBoard = BOARD,
    k: int = 2,
    executor: ThreadPoolExecutor | None = None,
) -> tuple[dict[str, Scored], ScoringReport]:
    return asyncio.run(
        score_users(candidates, scorer, board, k=k, now_ms=NOW_MS, executor=executor)
    )


def cand(*history: str, exclude: Collection[str] = ()) -> Candidates:
    return Candidates(history=list(history), exclude=frozenset(exclude))


def test_users_with_history_are_scored_in_one_model_call() -> None:
    scorer = FakeScorer()
    results, report = score(
        {"u1": cand("a", "b", exclude={"x"}), "cold": cand(), "u2": cand("c")}, scorer, k=2
    )
    assert [(c.histories, c.k, c.exclude) for c in scorer.calls] == [
        ([["a", "b"], ["c"]], 2, [{"x"}, set()])
    ]
    assert results["u1"] == Scored([("b+1", 1.0), ("b+2", 0.0)], None)
    assert results["u2"] == Scored([("c+1", 1.0), ("c+2", 0.0)], None)
    assert report.users_scored == 2
    assert report.seconds >= 0.0


def test_a_user_without_history_gets_trending_as_no_history() -> None:
    results, _report = score({"cold": cand(exclude={"hot"})}, FakeScorer(), k=2)
    assert results == {"cold": Scored([("warm", 4.0), ("mild", 2.0)], FALLBACK_NO_HISTORY)}


def test_without_a_model_every_user_gets_trending_with_the_right_reason() -> None:
    results, report = score(
        {"u1": cand("a", exclude={"warm"}), "cold": cand()}, scorer=None, k=3
    )
    assert results == {
        "u1": Scored([("hot", 8.0), ("mild", 2.0), ("cool", 1.0)], FALLBACK_NO_MODEL),
        "cold": Scored([("hot", 8.0), ("warm", 4.0), ("mild", 2.0)], FALLBACK_NO_HISTORY),
    }
    assert report == ScoringReport(0.0, 0)


def test_a_failing_model_falls_back_to_trending_as_scoring_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scorer = FakeScorer(name="broken-model", fail_with=RuntimeError("onnx exploded"))
    with caplog.at_level(logging.ERROR, logger="streams.scoring.scorer"):
        results, report = score(
            {"u1": cand("a", exclude={"hot"}), "u2": cand("b"), "cold": cand()}, scorer, k=1
        )
    assert results == {
        "u1": Scored([("warm", 4.0)], FALLBACK_SCORING_ERROR),
        "u2": Scored([("hot", 8.0)], FALLBACK_SCORING_ERROR),
        "cold": Scored([("hot", 8.0)], FALLBACK_NO_HISTORY),
    }
    assert report.users_scored == 0
    assert any("broken-model" in r.getMessage() and r.exc_info for r in caplog.records)


def test_an_empty_board_gives_empty_fallbacks() -> None:
    results, _report = score(
        {"u1": cand("a"), "cold": cand()}, None, board=TrendingBoard.empty(), k=5
    )
    assert results == {
        "u1": Scored([], FALLBACK_NO_MODEL), "cold": Scored([], FALLBACK_NO_HISTORY)
    }


def test_the_model_runs_on_the_executor_when_one_is_given() -> None:
    scorer = FakeScorer()
    with ThreadPoolExecutor(1, thread_name_prefix="scoring-test") as executor:
        results, report = score({"u1": cand("a")}, scorer, k=1, executor=executor)
    assert results == {"u1": Scored([("a+1", 0.0)], None)}
    assert report.users_scored == 1
    assert scorer.calls[0].thread.startswith("scoring-test")


def test_the_wait_for_a_busy_scoring_thread_is_reported() -> None:
    """A call queued behind another job on the scoring thread reports, as its wait, at
    least the time from its submission to that job's end, and no more than it took in all;
    inline scoring waits for nothing."""
    running, release, clocks = threading.Event(), threading.Event(), {}

    def other_partition() -> None:
        running.set()
        release.wait()
        clocks["released"] = time.perf_counter()

    async def queued_behind(executor: ThreadPoolExecutor) -> ScoringReport:
        executor.submit(other_partition)
        running.wait()  # the thread is busy: what comes next queues
        task = asyncio.ensure_future(score_users({"u1": cand("a")}, FakeScorer(), BOARD, k=1,
                                                 now_ms=NOW_MS, executor=executor))
        while executor._work_queue.qsize() < 1:  # noqa: SLF001  # until it is queued
            await asyncio.sleep(0)
        clocks["queued"] = time.perf_counter()
        release.set()
        _results, report = await task
        clocks["done"] = time.perf_counter()
        return report

    with ThreadPoolExecutor(1) as executor:
        started = time.perf_counter()
        report = asyncio.run(queued_behind(executor))
    assert clocks["released"] - clocks["queued"] <= report.waited_seconds
    assert report.waited_seconds <= clocks["done"] - started
    assert score({"u1": cand("a")}, FakeScorer())[1].waited_seconds == 0.0


def test_a_model_failing_on_the_executor_falls_back_too() -> None:
    scorer = FakeScorer(fail_with=ValueError("bad input"))
    with ThreadPoolExecutor(1) as executor:
        results, _report = score({"u1": cand("a")}, scorer, k=1, executor=executor)
    assert results == {"u1": Scored([("hot", 8.0)], FALLBACK_SCORING_ERROR)}


def test_a_model_returning_too_few_rows_falls_back_as_scoring_error() -> None:
    results, _report = score({"u1": cand("a"), "u2": cand("b")}, FakeScorer(drop_last_row=True))
    assert {user: s.fallback for user, s in results.items()} == {
        "u1": FALLBACK_SCORING_ERROR, "u2": FALLBACK_SCORING_ERROR
    }


def test_a_user_whose_items_the_model_never_saw_gets_trending_as_unknown_items() -> None:
    scorer = FakeScorer(unknown=frozenset({"new1", "new2"}))
    results, report = score({"u1": cand("new1", "new2"), "u2": cand("new1", "a")}, scorer)
    assert results["u1"].fallback == FALLBACK_UNKNOWN_ITEMS
    assert results["u1"].items == [("hot", 8.0), ("warm", 4.0)]
    assert results["u2"] == Scored([("a+1", 1.0), ("a+2", 0.0)], None)
    assert [call.histories for call in scorer.calls] == [[["new1", "a"]]]
    assert report.users_scored == 1


def test_a_batch_of_only_unknown_items_never_calls_the_model() -> None:
    scorer = FakeScorer(unknown=frozenset({"new1"}))
    results, report = score({"u1": cand("new1")}, scorer)
    assert results["u1"].fallback == FALLBACK_UNKNOWN_ITEMS
    assert scorer.calls == []
    assert report == ScoringReport(0.0, 0)


def _text_catalog() -> Catalog:
    """Items with text vectors: "near" resembles the history's "a"; "gone" is unavailable."""
    def record(item_id: str, vector: tuple[float, ...], available: bool = True) -> CatalogRecord:
        values = np.array(vector, dtype=np.float32)
        return CatalogRecord(Item(item_id, f"title {item_id}", available=available), "h",
                             values / np.linalg.norm(values))

    catalog = Catalog(dimensions=3)
    catalog.apply({"a": record("a", (1, 0, 0)), "near": record("near", (0.95, 0.05, 0)),
                   "far": record("far", (0, 0, 1)), "gone": record("gone", (0, 1, 0), False)})
    return catalog


@pytest.mark.parametrize("with_content", [True, False])
def test_text_neighbours_join_a_fallback_only_with_content(with_content: bool) -> None:
    board = record_many(None, [("far", 3.0, NOW_MS), ("gone", 9.0, NOW_MS)], 3600.0, 100)
    results, _ = rank_users({"u": cand("a")}, None, board, k=3, now_ms=NOW_MS,
                            retrieval=Retrieval(_text_catalog(), 2, 5),
                            with_content=with_content)
    items = [item for item, _ in results["u"].items]
    assert ("near" in items) is with_content  # the text neighbour of "a"
    assert "far" in items and "gone" not in items  # trending, and the catalogue still filters


def test_text_neighbours_say_which_recent_item_they_resemble() -> None:
    def record(item_id: str, *vector: float) -> CatalogRecord:
        values = np.array(vector, dtype=np.float32)
        return CatalogRecord(Item(item_id, f"title {item_id}"), "h",
                             values / np.linalg.norm(values))

    catalog = Catalog(dimensions=3)
    catalog.apply({"a": record("a", 1, 0, 0), "c": record("c", 0, 0, 1),
                   "near-a": record("near-a", 0.95, 0.05, 0),
                   "near-c": record("near-c", 0.05, 0.1, 0.95),
                   "fresh": record("fresh", 0.6, 0.3, 0.6)})
    board = record_many(None, [("near-a", 1.0, NOW_MS), ("near-c", 1.0, NOW_MS)], 3600.0, 100)
    results, _ = rank_users({"u": cand("a", "c"), "v": cand("c")}, None, board, k=4,
                            now_ms=NOW_MS, retrieval=Retrieval(catalog, 4, 5))
    reasons = {user: {item: reason.to_json() for (item, _), reason in
                      zip(scored.items, scored.reasons, strict=True)}
               for user, scored in results.items()}
    assert reasons["u"]["near-a"] == {"kind": "similar", "item_id": "a"}
    assert reasons["u"]["near-c"] == {"kind": "similar", "item_id": "c"}
    assert reasons["u"]["fresh"] == {"kind": "new_item"}  # nobody has touched it
    assert reasons["v"]["near-a"] == {"kind": "similar", "item_id": "c"}  # c is all v has
