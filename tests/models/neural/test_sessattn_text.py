"""SessAttnText: exactly SessAttn without text, cold items scored through their text, the
text folded into the exported table (ONNX parity, served unchanged)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from models.errors import InvalidInputError
from models.model_dir_writer import write_model_dir
from models.neural import NEURAL_MODELS, build_model
from models.neural.sessattn_text import SessAttnText
from models.neural.training import TrainSettings
from models.serving import OnnxRecommender
from models.vocabulary import Vocabulary
from tests.models.conftest import TINY_N_ITEMS, make_sessions, tiny_text_vectors

CONFIG = {"dim": 16, "n_heads": 2, "max_seq_len": 8, "neighbors": 4}
SETTINGS = TrainSettings(max_epochs=3, batch_size=16, progress=False, seed=2)
PREFIXES = [[1], [3, 4], [10, 11, 12], [29, 2, 7, 7], [0, 5]]


def fitted(name: str, vectors: np.ndarray | None = None, sessions=None, **config):
    rec = NEURAL_MODELS[name](settings=SETTINGS, item_vectors=vectors, **{**CONFIG, **config})
    rec.fit(sessions if sessions is not None else make_sessions(), TINY_N_ITEMS)
    return rec


@pytest.mark.parametrize("text", ["none", "all-zero"])
def test_without_text_it_is_exactly_sessattn(text: str) -> None:
    """Same seed, same data: bit-identical scores (training included)."""
    vectors = None if text == "none" else np.zeros((TINY_N_ITEMS + 1, 8), np.float32)
    plain = fitted("sessattn")
    with_text_branch = fitted("sessattn_text", vectors, text_dim=8)
    assert with_text_branch.model is not None and not with_text_branch.model.has_text
    np.testing.assert_array_equal(with_text_branch.score(PREFIXES), plain.score(PREFIXES))


def test_items_without_text_get_exactly_their_id_embedding() -> None:
    model = build_model("sessattn_text", TINY_N_ITEMS, text_dim=8, **CONFIG)
    model.attach_text(tiny_text_vectors())  # every fifth item has no text
    with torch.no_grad():
        model.text_proj.weight.normal_()  # a projection that has learnt something
        table = model.eval().item_matrix()
    no_text = torch.arange(5, TINY_N_ITEMS + 1, 5)
    torch.testing.assert_close(table[no_text], model.items.weight[no_text], rtol=0, atol=0)
    with_text = torch.tensor([1, 2, 3])
    assert not torch.equal(table[with_text], model.items.weight[with_text])
    assert not table[0].any()  # padding


def clustered(n_clusters: int = 4, size: int = 10, seed: int = 0):
    """Items in clusters of ``size``; text vectors near their cluster's centre; sessions walk
    inside one cluster and never contain its last item (the cluster's cold item)."""
    rng = np.random.default_rng(seed)
    n_items = n_clusters * size
    centres = rng.normal(size=(n_clusters, 8))
    vectors = np.zeros((n_items + 1, 8), np.float32)
    for item in range(1, n_items + 1):
        vectors[item] = centres[(item - 1) // size] + 0.3 * rng.normal(size=8)
    vectors[1:] /= np.linalg.norm(vectors[1:], axis=1, keepdims=True)
    cold = [c * size + size for c in range(n_clusters)]
    sessions = []
    for _ in range(300):
        c = int(rng.integers(n_clusters))
        warm = np.arange(c * size + 1, c * size + size)
        sessions.append(rng.choice(warm, size=int(rng.integers(2, 6))).tolist())
    return n_items, vectors, cold, sessions


def test_cold_items_are_scored_through_their_text() -> None:
    n_items, vectors, cold, sessions = clustered()
    settings = TrainSettings(max_epochs=8, batch_size=32, lr=5e-3, valid_fraction=0.0,
                             progress=False)
    rec = NEURAL_MODELS["sessattn_text"](settings=settings, item_vectors=vectors, text_dim=8,
                                          **CONFIG)
    rec.fit(sessions, n_items)
    model = rec.model
    assert isinstance(model, SessAttnText)
    assert model.id_mask[cold].tolist() == [0.0] * len(cold)  # no untrained id embedding
    assert not set(cold) & set(model.pool.tolist())  # and no training negative
    with torch.no_grad():
        text_part = model.text_proj(model.text[cold])
        torch.testing.assert_close(model.eval().item_matrix()[cold], text_part)
    # a prefix from cluster c ranks c's cold item above the other clusters' cold items
    for c, item in enumerate(cold):
        scores = rec.score([[c * 10 + 1, c * 10 + 2, c * 10 + 3]])[0]
        assert scores[cold].argmax() == c, (c, scores[cold])
        assert (scores[item] > scores[1:n_items + 1]).mean() > 0.5  # above most items


def test_export_folds_the_text_into_one_item_table(tmp_path) -> None:
    rec = fitted("sessattn_text", tiny_text_vectors(), text_dim=8)
    assert rec.model is not None
    model_dir = write_model_dir(tmp_path / "m", rec.model, Vocabulary.identity(TINY_N_ITEMS),
                                training_data_fingerprint="tiny")
    assert model_dir.meta["onnx"]["parity"]["top20_identical"]
    shapes = [tuple(t.dims) for t in onnx.load(str(model_dir.onnx_path)).graph.initializer]
    assert (TINY_N_ITEMS + 1, 8) not in shapes and (8, 16) not in shapes  # no text, no proj
    served = OnnxRecommender(model_dir.path, device="cpu")
    served.fit([], TINY_N_ITEMS)
    np.testing.assert_allclose(served.score(PREFIXES)[:, 1:], rec.score(PREFIXES)[:, 1:],
                               atol=1e-4)


def test_state_dict_round_trip_restores_the_text() -> None:
    source = build_model("sessattn_text", TINY_N_ITEMS, text_dim=8, **CONFIG)
    source.attach_text(tiny_text_vectors())
    copy = build_model("sessattn_text", TINY_N_ITEMS, text_dim=8, **CONFIG)
    assert not copy.has_text
    copy.load_state_dict(source.state_dict())
    assert copy.has_text


def test_id_dropout_trains_and_stays_deterministic() -> None:
    a = fitted("sessattn_text", tiny_text_vectors(), text_dim=8, id_dropout=0.3,
               text_hidden=12)
    b = fitted("sessattn_text", tiny_text_vectors(), text_dim=8, id_dropout=0.3,
               text_hidden=12)
    np.testing.assert_array_equal(a.score(PREFIXES), b.score(PREFIXES))
    assert np.isfinite(a.score(PREFIXES)[:, 1:]).all()


def test_wrong_text_shape_and_text_for_an_id_only_model_are_refused() -> None:
    model = build_model("sessattn_text", TINY_N_ITEMS, text_dim=8, **CONFIG)
    with pytest.raises(InvalidInputError, match="text vectors"):
        model.attach_text(np.zeros((TINY_N_ITEMS, 8), np.float32))
    with pytest.raises(InvalidInputError, match="does not read item text"):
        fitted("sessattn", tiny_text_vectors())


def test_whitening_gives_unit_variance_on_the_kept_directions() -> None:
    from models.neural.sessattn_text import _whiten

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(500, 6)) * [5, 3, 1, 0.5, 0.1, 0.01]).float()
    x = x - x.mean(dim=0)
    white = _whiten(x, rank=4)
    singular = torch.linalg.svdvals(white.double()) / len(x) ** 0.5
    torch.testing.assert_close(singular[:4], torch.ones(4, dtype=torch.float64), atol=1e-4,
                               rtol=0)
    assert singular[4:].max() < 1e-4  # the two weakest directions are dropped


def test_sampled_softmax_draws_negatives_from_the_training_pool() -> None:
    n_items, vectors, cold, sessions = clustered()
    model = build_model("sessattn_text", n_items, text_dim=8, **CONFIG)
    model.attach_text(vectors)
    model.prepare(sessions)
    pool = model.training_candidates()
    assert pool is not None and not set(cold) & set(pool.tolist())
    torch.manual_seed(0)
    ids = torch.tensor([[1, 2, 3], [11, 12, 0]])
    loss = model.train().loss(ids, torch.tensor([3, 2]), negatives=8)
    loss.backward()
    assert torch.isfinite(loss)
