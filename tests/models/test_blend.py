"""The blend: its terms, the tuning table's exactness against dense ranking, and a model
directory with a blend served the same way in every ranking mode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.blend import Blend, BlendWeights, history_entries, load_blend, softmax_rows
from models.blend_fit import build_table, evaluate_table, fit_blend
from models.errors import InvalidInputError, ModelDirectoryError
from models.evaluation import ranks_from_scores
from models.model_dir import META_FILE
from models.neighbourhood import KNN_DIR, Neighbourhood, Transitions
from models.serving import OnnxRecommender, check_servable, load_scorer
from tests.models.conftest import TINY_N_ITEMS, make_sessions, tiny_model_dir

WIDTH = TINY_N_ITEMS + 1


def test_history_entries_weigh_recent_items_most_and_sum_to_one() -> None:
    keys, values = history_entries([[5, 2, 0, 5], [], [7]], WIDTH, decay=2.0)
    assert keys.tolist() == [2, 5, 2 * WIDTH + 7]  # OOV 0 dropped, 5 once (its last view)
    assert values[1] > values[0]
    assert values[:2].sum() == pytest.approx(1.0) and values[2] == pytest.approx(1.0)


def test_weights_are_checked() -> None:
    with pytest.raises(InvalidInputError):
        BlendWeights(knn=-1.0)
    with pytest.raises(InvalidInputError):
        Blend(None, BlendWeights(knn=0.5))
    with pytest.raises(InvalidInputError):
        Blend(None, BlendWeights(rules=0.5))


def _hood() -> Neighbourhood:
    return Neighbourhood.fit(make_sessions(), TINY_N_ITEMS)


def _rules() -> Transitions:
    return Transitions.fit(make_sessions(), TINY_N_ITEMS)


def test_apply_adds_the_terms_to_the_probabilities() -> None:
    rng = np.random.default_rng(0)
    rows = [[1, 2, 3], [4], [0]]
    logits = rng.normal(size=(3, WIDTH)).astype(np.float32)
    weights = BlendWeights(knn=0.7, rules=0.3, repeat=0.2, repeat_decay=1.0)
    got = Blend(_hood(), weights, _rules()).apply(logits.copy(), rows)
    expected = softmax_rows(logits.copy())
    for weight, (keys, values) in ((0.7, _hood().entries(rows)),
                                   (0.3, _rules().entries(rows)),
                                   (0.2, history_entries(rows, WIDTH, 1.0))):
        expected.reshape(-1)[keys] += weight * values.astype(np.float32)
    expected[:, 0] = -np.inf
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_apply_rescores_only_the_items_a_term_reaches() -> None:
    rows = [[1, 2]]
    logits = np.full((1, WIDTH), -np.inf, dtype=np.float32)
    logits[0, 20] = 3.0  # the one retrieved candidate
    asked: list[list[int]] = []

    def rescore(r: np.ndarray, items: np.ndarray) -> np.ndarray:
        asked.append(items.tolist())
        return np.zeros(len(items), dtype=np.float32)

    got = Blend(None, BlendWeights(repeat=0.5)).apply(logits, rows, rescore)
    assert asked == [[1, 2]]
    assert np.isfinite(got[0]).nonzero()[0].tolist() == [1, 2, 20]


def test_tuning_table_ranks_equal_dense_ranking() -> None:
    """Items outside the table cannot reach the top k: the table's HR/MRR are exact."""
    rng = np.random.default_rng(1)
    prefixes = [list(rng.integers(0, TINY_N_ITEMS + 1, size=int(rng.integers(1, 6))))
                for _ in range(60)]
    targets = rng.integers(1, TINY_N_ITEMS + 1, size=60)
    logits = (3 * rng.normal(size=(60, WIDTH))).astype(np.float32)
    logits[:, 0] = -np.inf
    hood = _hood()
    rules = _rules()
    table = build_table([logits[:25], logits[25:]], prefixes, targets, hood, rules, keep=8)
    for weights in (BlendWeights(), BlendWeights(knn=0.4, rules=0.2, repeat=0.1,
                                                 repeat_decay=4.0)):
        dense = Blend(hood, weights, rules).apply(logits.copy(), prefixes)
        ranks = ranks_from_scores(dense, targets)
        hit = ranks <= 5
        got = evaluate_table(table, weights, k=5)
        assert got["hr@5"] == pytest.approx(hit.mean())
        assert got["mrr@5"] == pytest.approx(np.where(hit, 1.0 / ranks, 0.0).mean())


@pytest.fixture(scope="module")
def blended_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model directory with a blend chosen on the tiny sessions' last cases."""
    out = tmp_path_factory.mktemp("blend") / "model"
    shutil.copytree(tiny_model_dir(), out)
    sessions = make_sessions(seed=5)
    valid = ([s[:-1] for s in sessions[-30:]], np.asarray([s[-1] for s in sessions[-30:]]))
    record = fit_blend(out, sessions[:-30], sessions, valid, k=5)
    assert set(record["validation"]) == {"cases", "neural", "blend"}
    if not record["weights"]:  # the grid always holds a knn weight: force one for serving
        meta = json.loads((out / META_FILE).read_text())
        meta["blend"] = {"weights": {"knn": 0.5, "rules": 0.2, "repeat": 0.1,
                                     "repeat_decay": 2.0},
                         "knn": Neighbourhood.fit(sessions, TINY_N_ITEMS).save(out),
                         "rules": Transitions.fit(sessions, TINY_N_ITEMS).save(out)}
        (out / META_FILE).write_text(json.dumps(meta))
    return out


def test_a_blended_directory_serves_the_same_lists_exact_and_ann(
    blended_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import serving

    monkeypatch.setattr(serving, "AUTO_MIN_ITEMS", 1)
    exact = load_scorer(blended_dir, device="cpu", retrieval="exact")
    ann = load_scorer(blended_dir, device="cpu", retrieval="ann", candidates=5)
    assert exact.blend is not None and "blend" in exact.describe_retrieval()
    assert load_scorer(blended_dir, device="cpu").retrieval == "ann"  # auto: the index
    check_servable(exact)
    histories = [["3", "4"], ["10"], ["unknown"], ["7", "7", "8"]]
    want = exact.recommend(histories, 5, [set(h) for h in histories])
    assert want == exact.recommend(histories, 5, [set(h) for h in histories])
    for row, history in zip(want, histories, strict=True):
        assert len(row) == 5 and not {i for i, _ in row} & set(history)
    ann_lists = ann.recommend(histories, 5, [set(h) for h in histories])
    assert all(len(row) == 5 for row in ann_lists)
    full = load_scorer(blended_dir, device="cpu", retrieval="ann", candidates=TINY_N_ITEMS)
    got = full.recommend(histories, 5, [set(h) for h in histories])
    assert [[i for i, _ in r] for r in got] == [[i for i, _ in r] for r in want]


def test_offline_scores_rank_like_the_served_lists(blended_dir: Path) -> None:
    recommender = OnnxRecommender(blended_dir, device="cpu")
    recommender.fit([], TINY_N_ITEMS)
    scorer = load_scorer(blended_dir, device="cpu", retrieval="exact")
    prefixes = [[3, 4], [10], [7, 7, 8]]
    top = recommender.rank(prefixes, k=5)
    served = scorer.recommend([[str(i) for i in p] for p in prefixes], 5)
    assert top.tolist() == [[int(i) for i, _ in row] for row in served]


def test_the_sparse_ann_blend_gives_the_dense_blends_numbers() -> None:
    """``apply_sparse`` (the stream's ann path) equals ``apply`` on the dense matrix with
    ``-inf`` outside the candidates, entry for entry, and scores nothing else."""
    rng = np.random.default_rng(3)
    rows = [[1, 2, 3], [4], [0], [5, 5, 9]]
    blend = Blend(_hood(), BlendWeights(knn=0.7, rules=0.3, repeat=0.4, repeat_decay=2.0),
                  _rules())
    neural = rng.normal(size=(len(rows), WIDTH)).astype(np.float32)

    def rescore(r: np.ndarray, i: np.ndarray) -> np.ndarray:
        return neural[r, i]

    dense = np.full((len(rows), WIDTH), -np.inf, dtype=np.float32)
    picked = [rng.choice(np.arange(1, WIDTH), size=6, replace=False) for _ in rows]
    keys = np.sort(np.concatenate([r * WIDTH + p for r, p in enumerate(picked)]))
    dense.reshape(-1)[keys] = neural.reshape(-1)[keys]
    want = blend.apply(dense, rows, rescore)
    got_keys, got = blend.apply_sparse(keys, neural.reshape(-1)[keys], rows, WIDTH, rescore)
    assert np.array_equal(got_keys, np.flatnonzero(np.isfinite(want)))
    np.testing.assert_allclose(got, want.reshape(-1)[got_keys], rtol=1e-6, atol=1e-7)
    assert set(keys.tolist()) <= set(got_keys.tolist())


def test_ann_serving_ranks_like_offline_ann_and_like_exact_with_every_candidate(
    blended_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import serving

    monkeypatch.setattr(serving, "AUTO_MIN_ITEMS", 1)
    prefixes = [[3, 4], [10], [7, 7, 8], [1, 2, 3, 4, 5]]
    histories = [[str(i) for i in p] for p in prefixes]
    for candidates in (5, 12):
        recommender = OnnxRecommender(blended_dir, device="cpu", retrieval="ann",
                                      candidates=candidates)
        recommender.fit([], TINY_N_ITEMS)
        scorer = load_scorer(blended_dir, device="cpu", retrieval="ann",
                             candidates=candidates)
        served = scorer.recommend(histories, 5, [set(h[-1:]) for h in histories])
        top = recommender.rank(prefixes, k=6)
        for row, ranked, prefix in zip(served, top.tolist(), prefixes, strict=True):
            assert [int(i) for i, _ in row] == [i for i in ranked if i != prefix[-1]][:5]


def test_a_broken_blend_section_is_refused(blended_dir: Path, tmp_path: Path) -> None:
    meta = json.loads((blended_dir / META_FILE).read_text())
    with pytest.raises(ModelDirectoryError, match="bad blend"):
        load_blend(blended_dir, {"blend": {"weights": {"knn": "x", "bogus": 1}}}, TINY_N_ITEMS)
    assert load_blend(blended_dir, {}, TINY_N_ITEMS) is None
    with pytest.raises(ModelDirectoryError, match="neighbourhood tables"):
        load_blend(tmp_path, meta, TINY_N_ITEMS)
    assert (blended_dir / KNN_DIR).is_dir()


def test_train_without_blend_then_blend_command(tmp_path: Path) -> None:
    """``streamrec train --no-blend`` serves the neural model alone; ``streamrec blend``
    then chooses the blend on the training's own validation cases, and refuses other data."""
    import argparse

    from models.cli_blend import add_blend_parser, run_blend
    from models.cli_common import EXIT_ERROR
    from models.cli_train import add_train_parser, run_train
    from models.model_dir import read_model_dir

    bench = tmp_path / "bench"
    bench.mkdir()
    sessions = make_sessions(200, seed=2)
    (bench / "train_sessions.txt").write_text(
        "\n".join(" ".join(map(str, s)) for s in [*sessions, list(range(1, 31))]) + "\n")
    (bench / "test.tsv").write_text("1 2\t3\n5\t6\n")
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_train_parser(sub)
    add_blend_parser(sub)
    out = tmp_path / "model"
    train = ["train", "--benchmark", str(bench), "--out", str(out), "--no-blend", "--epochs",
             "1", "--no-progress", "--set", "dim=8", "--set", "n_heads=2",
             "--set", "max_seq_len=6", "--set", "neighbors=2", "--valid-fraction", "0.2"]
    assert run_train(parser.parse_args(train)) == 0
    assert "blend" not in read_model_dir(out).meta
    assert run_blend(parser.parse_args(["blend", "--benchmark", str(bench), "--model",
                                        str(out)])) == 0
    directory = read_model_dir(out)
    record = directory.metrics["blend"]
    assert record["validation"]["cases"] > 0
    assert ("blend" in directory.meta) == bool(record["weights"])
    assert (out / KNN_DIR).is_dir() == bool(record["weights"].get("knn"))
    (bench / "train_sessions.txt").write_text("1 2 3\n4 5\n")
    assert run_blend(parser.parse_args(["blend", "--benchmark", str(bench), "--model",
                                        str(out)])) == EXIT_ERROR
