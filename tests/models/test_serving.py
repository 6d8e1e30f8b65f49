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
