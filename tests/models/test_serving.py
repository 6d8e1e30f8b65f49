"""Serving a model directory: provider selection, the scorer contract, the same tie order
as offline evaluation, and a tiny end-to-end ``streamrec train`` (benchmark and events)
whose output ``load_scorer`` serves."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from models import serving
from models.cli_train import add_train_parser, run_train
from models.data import load_benchmark
from models.errors import InvalidInputError, ProviderUnavailableError
from models.evaluation import evaluate
from models.model_dir import read_model_dir
from models.model_dir_writer import write_model_dir
from models.neural import build_model
from models.serving import (
    CPU,
    CUDA,
    OnnxRecommender,
    cuda_usable,
    load_scorer,
    select_providers,
)
from models.vocabulary import Vocabulary

N_ITEMS = 40
TINY_ARGS = ["--epochs", "2", "--set", "dim=16", "--set", "n_heads=2", "--set", "max_seq_len=6",
             "--no-progress", "--batch-size", "16"]


def parse_train(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers())
    return parser.parse_args(["train", *argv])


def write_benchmark(directory: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)

    def session() -> list[int]:
        start, length = int(rng.integers(1, N_ITEMS - 6)), int(rng.integers(2, 7))
        return [start + i for i in range(length)]

    lines = [" ".join(map(str, session())) for _ in range(300)]
    lines.append(str(N_ITEMS) + " 1")  # every item appears in training
    (directory / "train_sessions.txt").write_text("\n".join(lines) + "\n")
    tests = []
    for _ in range(30):
        s = session()
        tests.append(" ".join(map(str, s[:-1])) + "\t" + str(s[-1]))
    (directory / "test.tsv").write_text("\n".join(tests) + "\n")
    return directory


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, bench_dir) -> Path:
    out = tmp_path_factory.mktemp("model")
    argv = ["--benchmark", str(bench_dir), "--out", str(out), *TINY_ARGS]
    assert run_train(parse_train(argv)) == 0
    return out


# ------------------------------------------------------------------ provider selection
def test_auto_on_a_cpu_machine_asks_for_cpu_only() -> None:
    if cuda_usable():
        pytest.skip("CUDA is usable on this machine")
    assert select_providers("auto") == [CPU]
    assert select_providers("cpu") == [CPU]


def test_cuda_requested_without_cuda_is_a_clear_error() -> None:
    if cuda_usable():
        pytest.skip("CUDA is usable on this machine")
    with pytest.raises(ProviderUnavailableError, match="auto"):
        select_providers("cuda")


def test_auto_prefers_cuda_when_usable(monkeypatch) -> None:
    monkeypatch.setattr(serving, "cuda_usable", lambda: True)
    assert select_providers("auto") == [CUDA, CPU]
    assert select_providers("cpu") == [CPU]


def test_unknown_device_is_rejected() -> None:
    with pytest.raises(InvalidInputError):
        select_providers("tpu")


# ------------------------------------------------------------------ tie order
@pytest.fixture(scope="module")
def tied_model_dir(tmp_path_factory) -> Path:
    """A GRU4Rec whose output table is zero for every odd item, so those items score
    exactly 0 for any history: long runs of exact ties between positive and negative
    scores. External ids are not the indices (``sku-<index>``)."""
    torch.manual_seed(0)
    model = build_model("gru4rec", N_ITEMS, dim=8, max_seq_len=4).eval()
    with torch.no_grad():
        model.items.weight[1::2] = 0.0
    vocabulary = Vocabulary(tuple(f"sku-{i}" for i in range(1, N_ITEMS + 1)))
    out = tmp_path_factory.mktemp("tied") / "model"
    write_model_dir(out, model, vocabulary, training_data_fingerprint="t" * 64)
    return out


def test_serving_and_evaluation_order_ties_identically(tied_model_dir: Path) -> None:
    """``OnnxScorer.recommend`` (the stream) and ``OnnxRecommender.rank`` (offline
    evaluation) give the same order, exact ties included: by lower item index."""
    scorer = load_scorer(tied_model_dir, device="cpu")
    recommender = OnnxRecommender(tied_model_dir, device="cpu")
    recommender.fit([], N_ITEMS)
    vocabulary = scorer.vocabulary
    histories = [["sku-2", "sku-4"], ["sku-6"], ["nope"], ["sku-1", "sku-8", "sku-2"]]
    exclude = [{"sku-4"}, set(), {"sku-1", "sku-5", "nope"}, {"sku-2", "sku-3"}]
    served = scorer.recommend(histories, k=N_ITEMS, exclude=exclude)
    prefixes = [vocabulary.encode(h) for h in histories]
    excluded = [vocabulary.encode(e) for e in exclude]
    ranked = recommender.rank(prefixes, k=N_ITEMS, exclude=excluded)
    scores = recommender.score(prefixes)
    for row, (served_row, ranked_row) in enumerate(zip(served, ranked, strict=True)):
        assert np.count_nonzero(scores[row, 1:] == 0.0) >= N_ITEMS // 2  # real ties
        expected = [vocabulary.items[i - 1] for i in ranked_row if i not in excluded[row]]
        assert [item for item, _ in served_row] == expected
        tied = [int(item[4:]) for item, s in served_row if s == 0.0]
        assert tied == sorted(tied)  # ties: lower index first


# ------------------------------------------------------------------ end to end
def test_train_writes_a_complete_model_dir(model_dir: Path) -> None:
    loaded = read_model_dir(model_dir)
    assert loaded.meta["architecture"] == "sessattn" and loaded.n_items == N_ITEMS
    metrics = json.loads((model_dir / "metrics.json").read_text())
    for key in ("hr@10", "hr@20", "mrr@10", "mrr@20", "ndcg@20", "coverage@20", "cases"):
        assert key in metrics and key in metrics["test"]
    assert metrics["training"]["best_epoch"] >= 1
    assert (model_dir / "checkpoints" / "best.pt").is_file()


def test_scorer_serves_the_model_dir(model_dir: Path) -> None:
    scorer = load_scorer(model_dir, device="auto", intra_op_threads=1)
    assert scorer.provider == CPU or cuda_usable()
    assert scorer.name == "sessattn" and scorer.version and scorer.loaded_at.tzinfo is UTC
    out = scorer.recommend([["3", "4", "5"], ["7"]], k=5, exclude=[{"6"}, set()])
    assert [len(row) for row in out] == [5, 5]
    assert all(isinstance(i, str) and isinstance(s, float) for row in out for i, s in row)
    assert "6" not in [i for i, _ in out[0]]
    scores = [s for _, s in out[0]]
    assert scores == sorted(scores, reverse=True)


def test_unknown_ids_are_oov_and_never_recommended(model_dir: Path) -> None:
    scorer = load_scorer(model_dir)
    known = scorer.recommend([["3", "4"]], k=N_ITEMS, exclude=[set()])
    with_unknown = scorer.recommend([["nope", "3", "??", "4"]], k=N_ITEMS, exclude=[set()])
    assert with_unknown == known  # unknown ids are dropped from the history
    only_unknown = scorer.recommend([["nope"]], k=N_ITEMS + 5, exclude=[set()])[0]
    ids = [i for i, _ in only_unknown]
    assert len(ids) == N_ITEMS and len(set(ids)) == N_ITEMS
    assert set(ids) == set(scorer.vocabulary.items)  # never index 0 / an unknown id


def test_the_scorer_knows_exactly_its_vocabulary(model_dir: Path) -> None:
    scorer = load_scorer(model_dir)
    assert all(scorer.knows(item) for item in scorer.vocabulary.items)
    assert not any(scorer.knows(item) for item in ("nope", "", str(N_ITEMS + 1)))


def test_excluded_items_are_never_recommended(model_dir: Path) -> None:
    scorer = load_scorer(model_dir)
    rng = np.random.default_rng(0)
    histories = [[str(i) for i in rng.integers(1, N_ITEMS + 1, size=3)] for _ in range(20)]
    exclude = [set(map(str, rng.integers(1, N_ITEMS + 1, size=10))) for _ in range(20)]
    for row, ex in zip(scorer.recommend(histories, k=N_ITEMS, exclude=exclude), exclude,
                       strict=True):
        assert not ex & {i for i, _ in row}
        assert len(row) == N_ITEMS - len(ex)


def test_batched_scoring_equals_one_at_a_time(model_dir: Path) -> None:
    scorer = load_scorer(model_dir)
    histories = [["1", "2", "3", "4", "5", "6", "7", "8"], ["9"], ["10", "11"]]
    batched = scorer.recommend(histories, k=10, exclude=[set()] * 3)
    single = [scorer.recommend([h], k=10, exclude=[set()])[0] for h in histories]
    for a, b in zip(batched, single, strict=True):
        assert [i for i, _ in a] == [i for i, _ in b]
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-5)


def test_onnx_recommender_evaluates_the_artifact(model_dir: Path, bench_dir: Path) -> None:
    bench = load_benchmark(bench_dir)
    rec = OnnxRecommender(model_dir)
    rec.fit(bench.train_sessions, bench.n_items)
    result = evaluate(rec, bench.test_prefixes, bench.test_targets).to_json_dict()
    stored = json.loads((model_dir / "metrics.json").read_text())["test"]
    assert result["hr@20"] == pytest.approx(stored["hr@20"])
    top = rec.rank(bench.test_prefixes[:5], 3, exclude=[[1]] * 5)
    assert top.shape == (5, 3) and not (top == 1).any() and not (top == 0).any()
    with pytest.raises(InvalidInputError):
        rec.fit(bench.train_sessions, bench.n_items + 1)


def test_train_on_events(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    lines = []
    for user in range(60):
        first = int(rng.integers(0, 20))
        for step in range(int(rng.integers(2, 6))):
            ts = start + timedelta(minutes=user * 90 + step)
            lines.append(json.dumps({
                "event_id": f"e-{user}-{step}", "event_type": "view", "user_id": f"u{user}",
                "item_id": f"sku-{first + step}", "timestamp": ts.isoformat(),
            }))
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    out = tmp_path / "model"
    assert run_train(parse_train(["--events", str(events), "--out", str(out), *TINY_ARGS])) == 0
    scorer = load_scorer(out)
    row = scorer.recommend([["sku-3", "sku-4"]], k=3, exclude=[{"sku-5"}])[0]
    assert len(row) == 3 and all(i.startswith("sku-") and i != "sku-5" for i, _ in row)


# ------------------------------------------------------------------ servability check
def _copy_with_meta(model_dir: Path, target: Path, change) -> Path:
    import shutil

    shutil.copytree(model_dir, target)
    meta = json.loads((target / "meta.json").read_text())
    change(meta)
    (target / "meta.json").write_text(json.dumps(meta))
    return target


def test_a_trained_model_is_servable(model_dir: Path) -> None:
    serving.check_servable(serving.load_scorer(model_dir, device="cpu"))


def test_a_model_without_a_passed_parity_check_is_refused(model_dir: Path, tmp_path) -> None:
    def drop_parity(meta) -> None:
        meta["onnx"].pop("parity")

    broken = _copy_with_meta(model_dir, tmp_path / "m", drop_parity)
    with pytest.raises(serving.ModelDirectoryError, match="parity"):
        serving.check_servable(serving.load_scorer(broken, device="cpu"))


def test_a_model_declaring_another_interface_is_refused(model_dir: Path, tmp_path) -> None:
    def rename_output(meta) -> None:
        meta["onnx"]["outputs"][0]["name"] = "logits"

    broken = _copy_with_meta(model_dir, tmp_path / "m", rename_output)
    with pytest.raises(serving.ModelDirectoryError, match="logits"):
        serving.check_servable(serving.load_scorer(broken, device="cpu"))


def test_a_model_returning_nan_is_refused(model_dir: Path, monkeypatch) -> None:
    scorer = serving.load_scorer(model_dir, device="cpu")
    real = scorer.score_indices

    def poisoned(rows):
        scores = real(rows)
        scores[:, 1] = np.nan
        return scores

    monkeypatch.setattr(scorer, "score_indices", poisoned)
    with pytest.raises(serving.ModelDirectoryError, match="NaN"):
        serving.check_servable(scorer)


# ------------------------------------------------------------------ retrieval, then ranking
def _without_encoder(model_dir: Path, target: Path) -> Path:
    """A copy of ``model_dir`` as exported before the retrieval pair existed."""
    import shutil

    shutil.copytree(model_dir, target)
    for name in ("encoder.onnx", "item_vectors.npy"):
        (target / name).unlink()
    meta = json.loads((target / "meta.json").read_text())
    del meta["onnx"]["encoder"]
    (target / "meta.json").write_text(json.dumps(meta))
    return target


def _ids(rows: list[list[tuple[str, float]]]) -> list[list[str]]:
    return [[item for item, _ in row] for row in rows]


HISTORIES = [["3", "4", "5"], ["7"], ["nope"], ["1", "2", "3", "4", "5", "6", "7", "8"]]
EXCLUDE = [{"6"}, set(), {"1", "2", "nope"}, {"9", "10"}]


def test_ann_covering_the_catalogue_serves_what_exact_serves(model_dir: Path) -> None:
    exact = load_scorer(model_dir, device="cpu", retrieval="exact")
    ann = load_scorer(model_dir, device="cpu", retrieval="ann", candidates=N_ITEMS)
    assert (exact.retrieval, ann.retrieval) == ("exact", "ann") and ann.retriever is not None
    for k in (5, 20, N_ITEMS):
        want, got = exact.recommend(HISTORIES, k, EXCLUDE), ann.recommend(HISTORIES, k, EXCLUDE)
        assert _ids(got) == _ids(want)
        for got_row, want_row in zip(got, want, strict=True):
            np.testing.assert_allclose([s for _, s in got_row], [s for _, s in want_row],
                                       atol=1e-4)


def test_ann_with_few_candidates_stays_close_to_exact(tmp_path: Path) -> None:
    """A seeded random dot-product model over 2,000 items, 60 candidates per user: at least
    95 % of the exact top-20, never an excluded item, always 20 items."""
    torch.manual_seed(0)
    n_items = 2000
    model = build_model("gru4rec", n_items, dim=16, max_seq_len=6).eval()
    vocabulary = Vocabulary(tuple(f"sku-{i}" for i in range(1, n_items + 1)))
    write_model_dir(tmp_path / "m", model, vocabulary, training_data_fingerprint="r" * 64)
    exact = load_scorer(tmp_path / "m", device="cpu", retrieval="exact")
    ann = load_scorer(tmp_path / "m", device="cpu", retrieval="ann", candidates=60)
    rng = np.random.default_rng(0)
    histories = [[f"sku-{i}" for i in rng.integers(1, n_items + 1, size=int(m))]
                 for m in rng.integers(1, 7, size=200)]
    exclude = [set(h) | {f"sku-{i}" for i in rng.integers(1, n_items + 1, size=30)}
               for h in histories]
    got, want = ann.recommend(histories, 20, exclude), exact.recommend(histories, 20, exclude)
    overlap = [len(set(g) & set(w)) / 20 for g, w in zip(_ids(got), _ids(want), strict=True)]
    assert np.mean(overlap) >= 0.95
    for row, ex in zip(got, exclude, strict=True):
        assert len(row) == 20 and not ex & {item for item, _ in row}
        scores = [s for _, s in row]
        assert scores == sorted(scores, reverse=True)


def test_auto_serves_large_catalogues_through_the_index(
    model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    model_dir = _without_blend(model_dir, tmp_path / "neural")
    assert load_scorer(model_dir, device="cpu").retrieval == "exact"  # 40 items: exact
    monkeypatch.setattr(serving, "AUTO_MIN_ITEMS", N_ITEMS)
    scorer = load_scorer(model_dir, device="cpu")
    assert scorer.retrieval == "ann" and "candidates" in scorer.describe_retrieval()
    with pytest.raises(InvalidInputError, match="retrieval"):
        load_scorer(model_dir, device="cpu", retrieval="nearest")


def test_old_model_dirs_serve_exactly(model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    old = _without_encoder(model_dir, tmp_path / "old")
    monkeypatch.setattr(serving, "AUTO_MIN_ITEMS", 1)
    scorer = load_scorer(old, device="cpu")  # auto, but nothing to retrieve with
    assert scorer.retrieval == "exact" and scorer.retriever is None
    serving.check_servable(scorer)
    reference = load_scorer(model_dir, device="cpu", retrieval="exact")
    assert _ids(scorer.recommend(HISTORIES, 10, EXCLUDE)) == _ids(
        reference.recommend(HISTORIES, 10, EXCLUDE))
    with pytest.raises(serving.ModelDirectoryError, match="retrieval 'exact'"):
        load_scorer(old, device="cpu", retrieval="ann")


def test_check_servable_in_both_modes(model_dir: Path, tmp_path: Path) -> None:
    serving.check_servable(load_scorer(model_dir, device="cpu", retrieval="exact"))
    serving.check_servable(load_scorer(model_dir, device="cpu", retrieval="ann",
                                       candidates=10))
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    vectors = np.load(broken / "item_vectors.npy")
    np.save(broken / "item_vectors.npy", vectors[:, ::-1].copy())  # not the model's table
    scorer = load_scorer(broken, device="cpu", retrieval="ann", candidates=10)
    with pytest.raises(serving.ModelDirectoryError, match="do not reproduce"):
        serving.check_servable(scorer)
    np.save(broken / "item_vectors.npy", vectors[:5])
    with pytest.raises(serving.ModelDirectoryError, match="shape"):
        load_scorer(broken, device="cpu", retrieval="ann")


def test_cuda_requested_without_cuda_is_a_clear_error_in_ann_mode_too(model_dir: Path) -> None:
    if cuda_usable():
        pytest.skip("CUDA is usable on this machine")
    with pytest.raises(ProviderUnavailableError, match="auto"):
        load_scorer(model_dir, device="cuda", retrieval="ann")


def _without_blend(model_dir: Path, out: Path) -> Path:
    """A copy of ``model_dir`` serving its neural model alone (``models.blend``)."""
    import shutil

    shutil.copytree(model_dir, out)
    meta = json.loads((out / "meta.json").read_text())
    meta.pop("blend", None)
    (out / "meta.json").write_text(json.dumps(meta))
    return out


def test_onnx_recommender_in_ann_mode_ranks_only_the_candidates(
    model_dir: Path, bench_dir: Path, tmp_path: Path
) -> None:
    import pickle

    model_dir = _without_blend(model_dir, tmp_path / "neural")
    bench = load_benchmark(bench_dir)
    exact = OnnxRecommender(model_dir, device="cpu")
    covering = OnnxRecommender(model_dir, device="cpu", retrieval="ann", candidates=N_ITEMS)
    few = OnnxRecommender(model_dir, device="cpu", retrieval="ann", candidates=5)
    for rec in (exact, covering, few):
        rec.fit(bench.train_sessions, bench.n_items)
    prefixes, targets = bench.test_prefixes, bench.test_targets
    full = evaluate(exact, prefixes, targets).to_json_dict()
    assert evaluate(covering, prefixes, targets).to_json_dict() == pytest.approx(full)
    scores = few.score(prefixes[:8])
    assert (np.isfinite(scores[:, 1:]).sum(axis=1) == 5).all()  # 5 candidates, rest -inf
    limited = evaluate(few, prefixes, targets).to_json_dict()
    assert limited["hr@20"] == pytest.approx(limited["hr@10"])  # 5 candidates: rank <= 5
    clone = pickle.loads(pickle.dumps(few))
    assert clone.scorer.retrieval == "ann" and np.array_equal(clone.score(prefixes[:8]), scores)


@pytest.mark.parametrize("retrieval", ["exact", "ann"])
def test_length_buckets_change_nothing_but_the_padding(model_dir: Path, retrieval: str) -> None:
    """A batch of mixed lengths is scored in several calls of similar lengths: the same
    lists and scores as one history at a time, in the caller's order."""
    scorer = load_scorer(model_dir, device="cpu", retrieval=retrieval, candidates=N_ITEMS)
    rng = np.random.default_rng(3)
    histories = [[str(i) for i in rng.integers(1, N_ITEMS + 1, size=int(m))]
                 for m in rng.integers(1, 9, size=100)]
    ids = [scorer.vocabulary.encode(h) for h in histories]
    assert len(serving.length_buckets(ids, scorer.max_seq_len)) >= 2
    batched = scorer.recommend(histories, 10, histories)
    scorer._bucketed = False  # as on CUDA: one padded call per batch
    unbucketed = scorer.recommend(histories, 10, histories)
    for history, got, one_call in zip(histories, batched, unbucketed, strict=True):
        alone = scorer.recommend([history], 10, [history])[0]
        assert [i for i, _ in got] == [i for i, _ in alone] == [i for i, _ in one_call]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in alone], atol=1e-5)
