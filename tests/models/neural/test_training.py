"""The shared training loop: windows, batching, early stopping, budget, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import InvalidInputError
from models.evaluation import metrics_from_ranks, ranks_from_scores
from models.neural import build_model
from models.neural.training import (
    TrainSettings,
    epoch_batches,
    quick_metrics,
    resolve_device,
    train_model,
    training_windows,
)
from models.onnx_contract import pad_batch

N_ITEMS = 30


def chain_sessions(n: int = 200, seed: int = 0) -> list[list[int]]:
    """Sessions walking up the catalogue: item i is followed by i + 1."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        start, length = int(rng.integers(1, N_ITEMS - 6)), int(rng.integers(2, 7))
        out.append([start + i for i in range(length)])
    return out


def tiny(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("sessattn", N_ITEMS, dim=16, n_heads=2, max_seq_len=6)


def test_windows_cover_every_target_with_bounded_context() -> None:
    session = list(range(1, 15))  # 13 targets
    windows = training_windows([session, [5], []], max_seq_len=4)
    assert all(2 <= len(w) <= 5 for w in windows)
    targets = [t for w in windows for t in w[1:].tolist()]
    assert targets == session[1:]


def test_epoch_batches_are_a_seeded_partition() -> None:
    windows = training_windows(chain_sessions(), 6)
    a = epoch_batches(windows, 16, np.random.default_rng(1))
    b = epoch_batches(windows, 16, np.random.default_rng(1))
    assert a == b
    assert sorted(i for batch in a for i in batch) == list(range(len(windows)))


def test_training_learns_and_keeps_the_best_epoch(tmp_path) -> None:
    sessions = chain_sessions()
    model = tiny()
    settings = TrainSettings(max_epochs=6, batch_size=16, lr=5e-3, lr_final=1.0,
                             valid_fraction=0.1, progress=False)
    result = train_model(model, sessions, settings, out_dir=tmp_path)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    best = max(result.history, key=lambda h: h["hr@20"] + h["mrr@20"])
    assert result.best_epoch == best["epoch"]
    assert result.best_valid == {"hr@20": best["hr@20"], "mrr@20": best["mrr@20"]}
    assert (tmp_path / "checkpoints" / "best.pt").is_file()
    assert (tmp_path / "checkpoints" / "last.pt").is_file()
    # the kept weights are the best epoch's
    prefixes = [s[:-1] for s in sessions[-20:]]
    targets = np.array([s[-1] for s in sessions[-20:]])
    assert quick_metrics(model, prefixes, targets, torch.device("cpu"))["hr@20"] > 0.5


def test_time_budget_stops_training() -> None:
    settings = TrainSettings(max_epochs=50, batch_size=8, max_minutes=1e-4, progress=False,
                             valid_fraction=0.0)
    result = train_model(tiny(), chain_sessions(), settings)
    assert result.stop_reason == "time_budget" and result.epochs_run == 1


def test_no_usable_session_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError):
        train_model(tiny(), [[1], [2]], TrainSettings(valid_fraction=0.0, progress=False))


def test_device_resolution_on_cpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("machine has CUDA")
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(InvalidInputError):
        resolve_device("cuda")


def test_validation_metrics_break_ties_like_the_evaluation() -> None:
    """Early stopping ranks like the reported metrics (pessimistic ties): a GRU4Rec whose
    odd items all score exactly 0 gives the same HR/MRR@20 in both."""
    torch.manual_seed(0)
    model = build_model("gru4rec", N_ITEMS, dim=8, max_seq_len=6).eval()
    with torch.no_grad():
        model.items.weight[1::2] = 0.0
    sessions = chain_sessions(60, seed=4)
    prefixes = [s[:-1] for s in sessions]
    targets = np.array([s[-1] for s in sessions])
    ids, lengths = pad_batch(prefixes, 6)
    with torch.no_grad():
        scores = model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
    assert (scores[:, 1::2] == 0.0).all()  # ties, and odd targets among them
    expected = metrics_from_ranks(ranks_from_scores(scores, targets), k_values=(20,))
    got = quick_metrics(model, prefixes, targets, torch.device("cpu"), k=20)
    assert got["hr@20"] == pytest.approx(expected["hr@20"])
    assert got["mrr@20"] == pytest.approx(expected["mrr@20"])
