"""The offline re-ranking harness on a tiny synthetic catalogue with three topics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.rerank_eval import evaluate_lists, rerank_lists

TOPICS = 3
PER_TOPIC = 10
N = TOPICS * PER_TOPIC  # items 1..30; item i belongs to topic (i - 1) // 10


def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    out = np.zeros((N + 1, TOPICS), dtype=np.float32)
    for item in range(1, N + 1):
        out[item, (item - 1) // PER_TOPIC] = 1.0
        out[item] += 0.05 * rng.random(TOPICS)
    out[1:] /= np.linalg.norm(out[1:], axis=1, keepdims=True)
    return out


def topic(item: int) -> str:
    return f"t{(item - 1) // PER_TOPIC}"


def scores(rows: int) -> np.ndarray:
    """The model likes topic 0, then topic 1, then topic 2."""
    out = np.zeros((rows, N + 1), dtype=np.float32)
    out[:, 1:] = np.linspace(1.0, 0.0, N)
    return out


def test_diversity_spreads_lists_over_topics_at_a_cost_in_accuracy() -> None:
    v = vectors()
    targets = [2, 3]  # the model's own favourites
    plain = evaluate_lists(rerank_lists(scores(2), v, lam=0.0, k=5), targets, v, topic, k=5)
    varied = evaluate_lists(rerank_lists(scores(2), v, lam=0.7, k=5), targets, v, topic, k=5)
    assert plain.coverage == 1 / 5 and varied.coverage == 3 / 5
    assert varied.diversity > plain.diversity
    assert plain.hr_at_20 == 1.0 and plain.ndcg_at_10 > varied.ndcg_at_10


def test_a_search_for_the_targets_topic_brings_it_into_the_list() -> None:
    v = vectors()
    targets = [25, 28]  # topic 2: the model ranks it last
    query = np.tile(np.array([0.0, 0.0, 1.0], dtype=np.float32), (2, 1))
    without = evaluate_lists(rerank_lists(scores(2), v, lam=0.0, k=5, pool_size=5),
                             targets, v, topic, k=5)
    with_search = evaluate_lists(
        rerank_lists(scores(2), v, lam=0.0, queries=query, k=5, pool_size=5),
        targets, v, topic, k=5)
    assert without.hr_at_20 == 0.0
    assert with_search.hr_at_20 > 0.0


def test_evaluate_reports_the_reranked_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import json

    from models.cli_evaluate import add_evaluate_parser, run_evaluate
    from tests.models.conftest import write_recbole_dataset

    data = write_recbole_dataset(tmp_path / "tiny", {
        f"u{n}": [(n + i) % 5 for i in range(6)] for n in range(8)})
    parser = argparse.ArgumentParser()
    add_evaluate_parser(parser.add_subparsers())
    args = parser.parse_args(["evaluate", "--data-dir", str(data), "--model", "pop",
                              "--diversity-lambda", "0", "0.5", "--simulate-search",
                              "--json"])
    assert run_evaluate(args) == 0
    document = json.loads(capsys.readouterr().out)
    rows = {(r["search"], r["lambda"]): r for r in document["rows"]}
    assert set(rows) == {(False, 0.0), (False, 0.5), (True, 0.0), (True, 0.5)}
    assert all(r["cases"] == 8 and 0.0 <= r["hr@20"] <= 1.0 for r in rows.values())
