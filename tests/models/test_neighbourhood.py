"""The servable neighbourhood: sparse scores equal the session-kNN's, each row a
distribution, and the tables survive a save/load round trip into a model directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.baselines.sequential_rules import SequentialRules
from models.baselines.session_knn import SessionKNN, SessionKNNConfig
from models.errors import ModelDirectoryError
from models.neighbourhood import KNN_DIR, TABLES_FILE, Neighbourhood, Transitions
from tests.models.conftest import TINY_N_ITEMS, make_sessions

PREFIXES = [[1, 2], [7], [3, 9, 3], [0], [29, 30, 1]]


@pytest.mark.parametrize("decay", [2.0, None])
def test_entries_are_the_session_knn_scores_normalised_per_row(decay: float | None) -> None:
    config = SessionKNNConfig(neighbour_decay=decay, popularity_fallback=False)
    knn = SessionKNN(config)
    knn.fit(make_sessions(), TINY_N_ITEMS)
    dense = knn.neighbour_scores(PREFIXES)  # (B, n + 1)
    keys, values = Neighbourhood(knn, TINY_N_ITEMS).entries(PREFIXES)
    rebuilt = np.zeros(dense.size)
    rebuilt[keys] = values
    rebuilt = rebuilt.reshape(dense.shape)
    sums = dense.sum(axis=1, keepdims=True)
    expected = np.divide(dense, sums, out=np.zeros_like(dense), where=sums > 0)
    np.testing.assert_allclose(rebuilt, expected, rtol=1e-12)
    assert np.all(np.diff(keys) > 0)
    assert not rebuilt[3].any()  # an all-OOV history has no neighbours


def test_save_and_load_give_the_same_scores(tmp_path: Path) -> None:
    hood = Neighbourhood.fit(make_sessions(seed=3), TINY_N_ITEMS,
                             SessionKNNConfig(k=7, popularity_fallback=False))
    config = hood.save(tmp_path)
    loaded = Neighbourhood.load(tmp_path, config, TINY_N_ITEMS)
    assert loaded.config == hood.config
    for got, want in zip(loaded.entries(PREFIXES), hood.entries(PREFIXES), strict=True):
        np.testing.assert_array_equal(got, want)


def test_load_refuses_missing_or_mismatched_tables(tmp_path: Path) -> None:
    with pytest.raises(ModelDirectoryError, match="cannot read"):
        Neighbourhood.load(tmp_path, {}, TINY_N_ITEMS)
    config = Neighbourhood.fit(make_sessions(), TINY_N_ITEMS).save(tmp_path)
    with pytest.raises(ModelDirectoryError, match="covers 30 items"):
        Neighbourhood.load(tmp_path, config, TINY_N_ITEMS + 1)
    with np.load(tmp_path / KNN_DIR / TABLES_FILE) as arrays:
        broken = dict(arrays)
    broken["positions"] = broken["positions"][:-1]
    np.savez(tmp_path / KNN_DIR / TABLES_FILE, **broken)
    with pytest.raises(ModelDirectoryError, match="inconsistent"):
        Neighbourhood.load(tmp_path, config, TINY_N_ITEMS)


def test_transitions_are_the_rules_of_the_last_item_normalised(tmp_path: Path) -> None:
    sessions = make_sessions(seed=4)
    sr = SequentialRules()
    sr.fit(sessions, TINY_N_ITEMS)
    rules = Transitions.fit(sessions, TINY_N_ITEMS)
    keys, values = rules.entries(PREFIXES)
    dense = np.zeros(len(PREFIXES) * (TINY_N_ITEMS + 1))
    dense[keys] = values
    dense = dense.reshape(len(PREFIXES), -1)
    matrix = sr.rule_matrix().toarray()
    for row, prefix in enumerate(PREFIXES):
        known = [i for i in prefix if i]
        want = matrix[known[-1]] if known else np.zeros(TINY_N_ITEMS + 1)
        total = want.sum()
        np.testing.assert_allclose(dense[row], want / total if total else want, rtol=1e-12)
    config = rules.save(tmp_path)
    loaded = Transitions.load(tmp_path, config, TINY_N_ITEMS)
    for got, want in zip(loaded.entries(PREFIXES), (keys, values), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    with pytest.raises(ModelDirectoryError, match="covers 30 items"):
        Transitions.load(tmp_path, config, TINY_N_ITEMS + 2)
