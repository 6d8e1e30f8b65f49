"""The cold-item protocol: how well does a model recommend items it never saw in training?

A seeded random share of the catalogue is **hidden**: every occurrence of a hidden item is
removed from the training sessions (sessions left empty are dropped), and only the cases
whose target is a hidden item are kept, in the test and in the validation cases alike.
Prefixes are left as they are: a hidden item may appear in a history, as a new item does
when a shopper has just viewed it. The catalogue (``n_items``, vocabulary, item texts) is
unchanged, so every model still scores every item.

A model that knows items only by their id has learnt nothing about a hidden item, so it
scores close to 0 by construction; a model that reads item text can still place it.

>>> from models.data.benchmark import Benchmark
>>> bench = Benchmark([[1, 2, 3], [3, 4]], [[1], [2, 3]], np.array([4, 2]), n_items=4,
...                   fingerprint="x")
>>> cold = cold_item_split(bench, seed=0, fraction=0.25)
>>> hidden_items(4, seed=0, fraction=0.25).tolist(), cold.train_sessions
([4], [[1, 2, 3], [3]])
>>> cold.test_prefixes, cold.test_targets.tolist(), cold.protocol
([[1]], [4], 'cold-items(seed=0, fraction=0.25)')
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from models.data.benchmark import STANDARD, Benchmark
from models.errors import InvalidBenchmarkError, InvalidInputError

COLD_ITEMS = "cold-items"
DEFAULT_FRACTION = 0.1
"""Share of the catalogue hidden from training."""


def hidden_items(n_items: int, seed: int = 0, fraction: float = DEFAULT_FRACTION) -> (
    npt.NDArray[np.int64]
):
    """The sorted item indices (in ``1..n_items``) the protocol hides: ``round(fraction *
    n_items)`` of them (at least one), drawn uniformly without replacement from ``seed``."""
    if not 0.0 < fraction < 1.0:
        raise InvalidInputError(f"the hidden fraction must be in (0, 1), got {fraction}")
    count = max(1, round(fraction * n_items))
    if count >= n_items:
        raise InvalidInputError(f"hiding {count} of {n_items} items leaves nothing to train on")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(np.arange(1, n_items + 1), size=count, replace=False))


def cold_item_split(
    benchmark: Benchmark, seed: int = 0, fraction: float = DEFAULT_FRACTION
) -> Benchmark:
    """``benchmark`` under the cold-item protocol (see the module docstring).

    The fingerprint changes with the seed and fraction, so a model trained under the
    protocol is told apart from one trained on the full data.
    """
    if benchmark.protocol != STANDARD:
        raise InvalidInputError(f"the benchmark is already under the {benchmark.protocol} protocol")
    hidden = np.zeros(benchmark.n_items + 1, dtype=bool)
    hidden[hidden_items(benchmark.n_items, seed, fraction)] = True
    train = [kept for s in benchmark.train_sessions if (kept := [i for i in s if not hidden[i]])]
    test = hidden[benchmark.test_targets]
    if not test.any():
        raise InvalidBenchmarkError(
            f"no test case targets one of the {int(hidden.sum())} hidden items "
            f"(seed {seed}): use a larger fraction or another seed"
        )
    valid_prefixes, valid_targets = benchmark.valid_prefixes, benchmark.valid_targets
    if valid_prefixes is not None and valid_targets is not None:
        keep = hidden[valid_targets]
        valid_prefixes = [p for p, k in zip(valid_prefixes, keep, strict=True) if k]
        valid_targets = valid_targets[keep]
    protocol = f"{COLD_ITEMS}(seed={seed}, fraction={fraction})"
    return replace(
        benchmark,
        train_sessions=train,
        test_prefixes=[p for p, k in zip(benchmark.test_prefixes, test, strict=True) if k],
        test_targets=benchmark.test_targets[test],
        valid_prefixes=valid_prefixes,
        valid_targets=valid_targets,
        fingerprint=hashlib.sha256(f"{benchmark.fingerprint}:{protocol}".encode()).hexdigest(),
        protocol=protocol,
    )
