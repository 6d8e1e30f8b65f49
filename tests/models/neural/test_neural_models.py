"""Every neural model: causal training path == exported inference path, ONNX parity,
determinism, and the SessionRecommender contract. Tiny dimensions: the file runs in seconds.
Text-aware models run here with random item text vectors (half the items without text)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.export import check_parity, export_onnx, random_prefixes
from models.neural import ARCHITECTURES, NEURAL_MODELS, TEXT_ARCHITECTURES, build_model
from models.neural.base import full_softmax_ce
from models.neural.training import TrainSettings
from models.onnx_contract import pad_batch
from models.protocol import SessionRecommender

N_ITEMS = 40
TINY = {
    "sessattn": {"dim": 16, "n_heads": 2, "max_seq_len": 8, "n_layers": 1, "neighbors": 4},
    "gru4rec": {"dim": 16, "max_seq_len": 8},
    "sasrec": {"dim": 16, "n_heads": 2, "n_layers": 1, "max_seq_len": 8},
    "sessattn_text": {"dim": 16, "n_heads": 2, "max_seq_len": 8, "n_layers": 1, "neighbors": 4,
                      "text_dim": 8, "text_hidden": 12},
}
NAMES = sorted(ARCHITECTURES)


def text_vectors(seed: int = 0) -> np.ndarray:
    """Random unit text vectors for items 1..N_ITEMS; even items have no text."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(N_ITEMS + 1, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[::2] = 0.0
    return vectors


def text_kwargs(name: str) -> dict:
    return {"item_vectors": text_vectors()} if name in TEXT_ARCHITECTURES else {}


def tiny_sessions(n: int = 120, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    sessions = []
    for _ in range(n):
        start, length = int(rng.integers(1, N_ITEMS - 6)), int(rng.integers(2, 7))
        sessions.append([start + i for i in range(length)])
    return sessions


def tiny_model(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(name, N_ITEMS, **TINY[name])
    if name in TEXT_ARCHITECTURES:
        model.attach_text(text_vectors())
        with torch.no_grad():  # a trained-like text projection (it starts at zero)
            for param in model.text_proj.parameters():
                param.normal_(std=0.3)
    model.prepare(tiny_sessions())  # e.g. fills SessAttn's neighbour tables
    return model.eval()


def test_registry_covers_every_architecture() -> None:
    assert set(NEURAL_MODELS) == set(ARCHITECTURES) == set(TINY)


@pytest.mark.parametrize("name", NAMES)
def test_inference_path_equals_training_path(name: str) -> None:
    model = tiny_model(name)
    ids, lengths = pad_batch(random_prefixes(N_ITEMS, 8, 16, seed=1), 8)
    ids_t, lengths_t = torch.from_numpy(ids), torch.from_numpy(lengths)
    with torch.no_grad():
        hidden = model.hidden_states(ids_t, lengths_t)  # (B, T, d)
        last = hidden[torch.arange(len(lengths)), lengths_t - 1]
        torch.testing.assert_close(model.session_vector(ids_t, lengths_t), last, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_training_path_is_causal(name: str) -> None:
    model = tiny_model(name)
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    changed = torch.tensor([[3, 4, 5, 30, 31]])
    lengths = torch.tensor([5])
    with torch.no_grad():
        a = model.hidden_states(ids, lengths)[:, :3]
        b = model.hidden_states(changed, lengths)[:, :3]
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_scores_do_not_depend_on_padding(name: str) -> None:
    model = tiny_model(name)
    alone = pad_batch([[5, 6]], 8)
    padded = pad_batch([[5, 6], [1, 2, 3, 4, 5, 6, 7, 8]], 8)
    with torch.no_grad():
        a = model(*map(torch.from_numpy, alone))[0]
        b = model(*map(torch.from_numpy, padded))[0]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert a[0] < a[1:].min()


@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_matches_pytorch(name: str, tmp_path) -> None:
    model = tiny_model(name)
    report = export_onnx(model, tmp_path / "model.onnx", parity_cases=32)
    assert report.max_abs_diff <= 1e-4 and report.top20_identical
    # a second, independent draw of prefixes (other lengths, other batch size)
    check_parity(model, tmp_path / "model.onnx", cases=17, seed=5)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name: str) -> None:
    settings = TrainSettings(max_epochs=2, batch_size=16, valid_fraction=0.1, progress=False,
                             seed=3)
    sessions = tiny_sessions()
    prefixes = [[1, 2], [7], [10, 11, 12]]
    scores = []
    for _ in range(2):
        rec = NEURAL_MODELS[name](settings=settings, **text_kwargs(name), **TINY[name])
        rec.fit(sessions, N_ITEMS)
        scores.append(rec.score(prefixes))
    np.testing.assert_array_equal(scores[0], scores[1])


@pytest.mark.parametrize("name", NAMES)
def test_recommender_contract(name: str) -> None:
    settings = TrainSettings(max_epochs=1, batch_size=16, valid_fraction=0.0, progress=False)
    rec = NEURAL_MODELS[name](settings=settings, **text_kwargs(name), **TINY[name])
    assert isinstance(rec, SessionRecommender)
    rec.fit(tiny_sessions(), N_ITEMS)
    prefixes = [[1, 2], [7], [10, 11, 12], []]
    before = [list(p) for p in prefixes]
    scores = rec.score(prefixes)
    assert scores.shape == (4, N_ITEMS + 1) and scores.dtype == np.float32
    assert np.all(np.isneginf(scores[:, 0])) and np.all(np.isfinite(scores[:, 1:]))
    top = rec.rank(prefixes, 5, exclude=[[2], [], [11, 12], []])
    assert top.shape == (4, 5) and (top > 0).all()
    assert 2 not in top[0] and 11 not in top[2] and 12 not in top[2]
    assert prefixes == before


@pytest.mark.parametrize("name", NAMES)
def test_trains_on_sessions_longer_than_it_reads(name: str) -> None:
    """Training windows hold max_seq_len + 1 items (the last one only as a target); a model
    must accept that width (SASRec's position table was one short: Diginetica crashed)."""
    settings = TrainSettings(max_epochs=1, batch_size=8, valid_fraction=0.0, progress=False)
    rec = NEURAL_MODELS[name](settings=settings, **text_kwargs(name),
                              **{**TINY[name], "max_seq_len": 4})
    rec.fit([[1 + (start + i) % N_ITEMS for i in range(12)] for start in range(30)], N_ITEMS)
    assert np.isfinite(rec.score([list(range(1, 13))])[:, 1:]).all()


@pytest.mark.parametrize("bf16", [False, True])
def test_full_softmax_ce_matches_cross_entropy(bf16: bool) -> None:
    torch.manual_seed(0)
    hidden = torch.randn(7, 8, requires_grad=True)
    items = torch.randn(50, 8, requires_grad=True)
    targets = torch.randint(0, 50, (7,))
    ref = F.cross_entropy(hidden @ items.T, targets)
    ref_h, ref_i = torch.autograd.grad(ref, (hidden, items))
    got = full_softmax_ce(hidden, items, targets, bf16=bf16)
    got_h, got_i = torch.autograd.grad(got, (hidden, items))
    tol = 5e-2 if bf16 else 1e-5
    torch.testing.assert_close(got, ref, atol=tol, rtol=tol)
    torch.testing.assert_close(got_h, ref_h, atol=tol * ref_h.abs().max().item(), rtol=0)
    torch.testing.assert_close(got_i, ref_i, atol=tol * ref_i.abs().max().item(), rtol=0)


def test_fused_normalize_matches_functional() -> None:
    from models.neural.base import l2_normalize

    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(5, 6, dtype=torch.float64)
    (got,) = torch.autograd.grad(l2_normalize(x), x, grad)
    (ref,) = torch.autograd.grad(F.normalize(x, dim=-1), x, grad)
    torch.testing.assert_close(got, ref)


def test_sampled_softmax_loss_trains() -> None:
    model = tiny_model("sessattn").train()
    ids, lengths = pad_batch(tiny_sessions(16), 8)
    loss = model.loss(torch.from_numpy(ids), torch.from_numpy(lengths), negatives=8)
    loss.backward()
    assert torch.isfinite(loss) and model.items.weight.grad.abs().sum() > 0


def test_neighbour_tables_hold_the_most_frequent_co_occurrences() -> None:
    model = build_model("sessattn", N_ITEMS, dim=8, n_heads=2, neighbors=2, neighbor_window=1)
    model.prepare([[1, 2], [1, 2], [1, 3], [4]])
    assert model.nbr_ids[1].tolist() == [2, 3]
    assert model.nbr_ids[4].tolist() == [0, 0]
    assert model.nbr_logw[1, 0].item() == pytest.approx(np.log(2))


def test_training_rows_read_the_other_folds_neighbours() -> None:
    model = build_model("sessattn", N_ITEMS, dim=8, n_heads=2, neighbors=2, neighbor_window=1)
    model.prepare([[1, 2], [1, 3], [1, 4, 5]])  # item sums 3 (fold 1), 4 (0), 10 (0)
    assert set(model.fold_ids[1, 1].tolist()) == {3, 4}  # fold-1 rows see fold-0 sessions
    assert model.fold_ids[0, 1].tolist() == [2, 0]
    assert model.fold_ids[0, 4].tolist() == [0, 0]
    assert "fold_ids" not in model.state_dict()
