"""Benchmark helpers: prefix expansion, validation carved from training, validation view."""

from __future__ import annotations

import numpy as np
import pytest

from models.data import Benchmark, expand_prefixes, split_validation
from models.errors import InvalidInputError


def test_expand_prefixes() -> None:
    prefixes, targets = expand_prefixes([[1, 2, 3], [4], [5, 6]])
    assert prefixes == [[1], [1, 2], [5]]
    assert targets.tolist() == [2, 3, 6]
    assert targets.dtype == np.int64


def test_split_validation_uses_the_last_sessions() -> None:
    sessions = [[1, 2], [2, 3], [3, 4], [1, 2], [2, 3], [3, 1], [4, 2], [1, 3], [9, 2, 3], [1]]
    train, prefixes, targets = split_validation(sessions, fraction=0.2)
    assert train == sessions[:8]
    # [9, 2, 3] loses the item unseen in training; [1] has no next item
    assert prefixes == [[2]] and targets.tolist() == [3]


def test_split_validation_sampling_is_seeded() -> None:
    sessions = [[i % 7 + 1, (i + 1) % 7 + 1, (i + 2) % 7 + 1] for i in range(100)]
    a = split_validation(sessions, 0.3, seed=1, max_cases=10)
    b = split_validation(sessions, 0.3, seed=1, max_cases=10)
    assert a[1] == b[1] and len(a[1]) == 10
    assert a[2].tolist() == b[2].tolist()


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_split_validation_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(InvalidInputError):
        split_validation([[1, 2]] * 10, fraction)


def test_validation_view_uses_the_datas_own_validation_cases() -> None:
    bench = Benchmark([[1, 2, 3]], [[1, 2, 3]], np.array([4]), n_items=4, fingerprint="f",
                      valid_prefixes=[[1, 2]], valid_targets=np.array([3]))
    view = bench.validation_view()
    assert view.train_sessions == [[1, 2, 3]]
    assert view.test_prefixes == [[1, 2]] and view.test_targets.tolist() == [3]
    assert view.validation is None  # the test cases are gone, not kept as validation


def test_validation_view_carves_cases_from_training_without_them() -> None:
    sessions = [[1, 2, 3]] * 9 + [[2, 3, 1]]
    bench = Benchmark(sessions, [[1]], np.array([2]), n_items=3, fingerprint="f")
    view = bench.validation_view()
    assert view.train_sessions == sessions[:9]  # the last 10 % are validation, not training
    assert view.test_prefixes == [[2], [2, 3]] and view.test_targets.tolist() == [3, 1]
