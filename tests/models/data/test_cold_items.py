"""The cold-item protocol: hidden items are gone from training, every kept case targets one,
the draw is seeded, and the catalogue is untouched."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.data import Benchmark, cold_item_split, expand_prefixes, hidden_items
from models.errors import InvalidBenchmarkError, InvalidInputError

N_ITEMS = 60


def benchmark(seed: int = 0, with_validation: bool = True) -> Benchmark:
    rng = np.random.default_rng(seed)
    sessions = [rng.integers(1, N_ITEMS + 1, size=int(rng.integers(1, 8))).tolist()
                for _ in range(200)]
    prefixes, targets = expand_prefixes(sessions[150:])
    valid_prefixes, valid_targets = expand_prefixes(sessions[100:150])
    return Benchmark(
        sessions[:100], prefixes, targets, N_ITEMS, fingerprint="f",
        item_texts=tuple(f"item {i}" for i in range(1, N_ITEMS + 1)),
        valid_prefixes=valid_prefixes if with_validation else None,
        valid_targets=valid_targets if with_validation else None,
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), data_seed=st.integers(0, 50),
       fraction=st.sampled_from([0.05, 0.1, 0.3]))
def test_hidden_items_leave_training_and_are_every_target(
    seed: int, data_seed: int, fraction: float
) -> None:
    bench = benchmark(data_seed)
    hidden = set(hidden_items(N_ITEMS, seed, fraction).tolist())
    try:
        cold = cold_item_split(bench, seed, fraction)
    except InvalidBenchmarkError:  # no test case targets a hidden item: said, not hidden
        assert not hidden & set(bench.test_targets.tolist())
        return
    assert len(hidden) == max(1, round(fraction * N_ITEMS))
    assert not hidden & {i for s in cold.train_sessions for i in s}
    assert all(cold.train_sessions)  # sessions left empty are dropped
    # training keeps everything else, in order
    assert cold.train_sessions == [k for s in bench.train_sessions
                                   if (k := [i for i in s if i not in hidden])]
    assert set(cold.test_targets.tolist()) <= hidden
    assert cold.valid_targets is not None and set(cold.valid_targets.tolist()) <= hidden
    # every test case whose target is hidden is kept, prefix unchanged
    expected = [(p, t) for p, t in zip(bench.test_prefixes, bench.test_targets.tolist(),
                                       strict=True) if t in hidden]
    assert list(zip(cold.test_prefixes, cold.test_targets.tolist(), strict=True)) == expected
    assert (cold.n_items, cold.item_texts, cold.item_ids) == (
        bench.n_items, bench.item_texts, bench.item_ids)


def test_the_split_is_seeded() -> None:
    a, b = cold_item_split(benchmark(), seed=3), cold_item_split(benchmark(), seed=3)
    assert a.train_sessions == b.train_sessions and a.test_prefixes == b.test_prefixes
    assert a.fingerprint == b.fingerprint
    assert hidden_items(N_ITEMS, 3).tolist() == hidden_items(N_ITEMS, 3).tolist()
    assert hidden_items(N_ITEMS, 3).tolist() != hidden_items(N_ITEMS, 4).tolist()
    assert cold_item_split(benchmark(), seed=4).fingerprint != a.fingerprint != "f"
    assert a.protocol == "cold-items(seed=3, fraction=0.1)"


def test_without_validation_cases_and_validation_view() -> None:
    cold = cold_item_split(benchmark(with_validation=False), seed=1, fraction=0.3)
    assert cold.validation is None
    # the validation view first, then the protocol: carved cases are filtered too
    view = cold_item_split(benchmark(with_validation=False).validation_view(), 1, 0.3)
    assert set(view.test_targets.tolist()) <= set(hidden_items(N_ITEMS, 1, 0.3).tolist())


def test_refusals() -> None:
    with pytest.raises(InvalidInputError):
        hidden_items(N_ITEMS, 0, fraction=1.0)
    with pytest.raises(InvalidInputError):
        cold_item_split(cold_item_split(benchmark(), 0), 0)  # already applied
    bench = Benchmark([[1, 2]], [[1]], np.array([2]), n_items=40, fingerprint="f")
    seed = next(s for s in range(100) if 2 not in hidden_items(40, s))  # 2 stays visible
    with pytest.raises(InvalidBenchmarkError, match="no test case"):
        cold_item_split(bench, seed)
