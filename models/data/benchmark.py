"""The structure every offline source is read into: :class:`Benchmark` (training sessions,
validation and test cases, optional item texts), plus the session helpers shared by the
loaders and the training loop (:func:`expand_prefixes`, :func:`split_validation`).

Item indices are dense ``1..n_items``; ``0`` is padding and out-of-vocabulary
(see ``docs/contracts.md``); :class:`~models.vocabulary.Vocabulary` maps external ids to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from models.errors import InvalidBenchmarkError, InvalidInputError
from models.vocabulary import Vocabulary

STANDARD = "standard"
"""``Benchmark.protocol`` of data as published (no item hidden)."""

VALIDATION_FRACTION = 0.1
"""Share of the most recent training sessions :meth:`Benchmark.validation_view` carves off
when the data has no validation cases of its own."""


@dataclass(frozen=True)
class Benchmark:
    """Training sessions plus next-item test cases, all as item indices ``1..n_items``.

    ``valid_prefixes``/``valid_targets`` are the data's own validation cases (Amazon
    leave-one-out data has them; Diginetica has none: training carves them from the
    training sessions, see :func:`split_validation`). ``item_texts[i - 1]`` is the text of
    item ``i`` (``""``: none); ``None`` when the data has no text at all.
    """

    train_sessions: list[list[int]]
    test_prefixes: list[list[int]]
    test_targets: npt.NDArray[np.int64]  # (n_cases,)
    n_items: int
    fingerprint: str  # sha256 of the training data's bytes (and of the protocol, if any)
    item_ids: tuple[str, ...] | None = None  # external ids of 1..n_items; None = identity
    valid_prefixes: list[list[int]] | None = None  # the data's own validation cases
    valid_targets: npt.NDArray[np.int64] | None = None  # (n_valid,)
    item_texts: tuple[str, ...] | None = None  # text of items 1..n_items; None = no text
    protocol: str = STANDARD  # how the data was changed, e.g. by models.data.cold_items

    @property
    def vocabulary(self) -> Vocabulary:
        if self.item_ids is None:
            return Vocabulary.identity(self.n_items)
        return Vocabulary(self.item_ids)

    @property
    def validation(self) -> tuple[list[list[int]], npt.NDArray[np.int64]] | None:
        """The data's own validation cases ``(prefixes, targets)``, or None."""
        if self.valid_prefixes is None or self.valid_targets is None:
            return None
        return self.valid_prefixes, self.valid_targets

    def validation_view(self, seed: int = 0) -> Benchmark:
        """This benchmark with its **validation** cases as the test cases, for model
        selection that never reads the test file.

        Data with its own validation cases keeps its training sessions; otherwise the most
        recent :data:`VALIDATION_FRACTION` of the training sessions become the cases
        (:func:`split_validation`, as ``streamrec train`` does) and are left out of training.
        """
        if self.validation is not None:
            prefixes, targets = self.validation
            return replace(self, test_prefixes=prefixes, test_targets=targets,
                           valid_prefixes=None, valid_targets=None)
        train, prefixes, targets = split_validation(
            self.train_sessions, VALIDATION_FRACTION, seed
        )
        if not prefixes:
            raise InvalidBenchmarkError("the validation split carved from training is empty")
        return replace(self, train_sessions=train, test_prefixes=prefixes, test_targets=targets)


def parse_ids(text: str, where: str) -> list[int]:
    """Space-separated positive item ids; :class:`InvalidBenchmarkError` naming ``where``."""
    try:
        ids = [int(tok) for tok in text.split()]
    except ValueError as exc:
        raise InvalidBenchmarkError(f"{where}: item ids must be integers ({exc})") from exc
    if ids and min(ids) < 1:
        raise InvalidBenchmarkError(f"{where}: item ids must be >= 1 (0 is reserved)")
    return ids


def expand_prefixes(
    sessions: Iterable[Sequence[int]],
) -> tuple[list[list[int]], npt.NDArray[np.int64]]:
    """Every (prefix of length >= 1, next item) case of every session, in session order.

    >>> p, t = expand_prefixes([[1, 2, 3], [4]])
    >>> p, t.tolist()
    ([[1], [1, 2]], [2, 3])
    """
    prefixes: list[list[int]] = []
    targets: list[int] = []
    for session in sessions:
        items = list(session)
        for end in range(1, len(items)):
            prefixes.append(items[:end])
            targets.append(items[end])
    return prefixes, np.asarray(targets, dtype=np.int64)


def split_validation(
    sessions: Sequence[Sequence[int]],
    fraction: float = 0.1,
    seed: int = 0,
    max_cases: int | None = None,
) -> tuple[list[list[int]], list[list[int]], npt.NDArray[np.int64]]:
    """Carve a validation set out of *training* sessions, mimicking the test protocol.

    Sessions are assumed chronological (the last lines of a benchmark's training file are the
    most recent), so the last ``fraction`` of them become validation sessions and the rest
    stay for training. As in the Diginetica test preprocessing, items a validation session
    shares with no training session are dropped from it, validation sessions left with fewer
    than two items are discarded, and each remaining session is expanded into all its
    (prefix, next item) cases (:func:`expand_prefixes`). When ``max_cases`` is set, that many
    cases are sampled without replacement using ``seed`` (order preserved); otherwise
    ``seed`` is unused and the split is fully deterministic.

    Returns ``(train_sessions, valid_prefixes, valid_targets)``.
    """
    if not 0.0 < fraction < 1.0:
        raise InvalidInputError(f"fraction must be in (0, 1), got {fraction}")
    n_valid = max(1, int(round(len(sessions) * fraction)))
    if n_valid >= len(sessions):
        raise InvalidInputError(f"{len(sessions)} sessions are too few to split off validation")
    train = [list(s) for s in sessions[: len(sessions) - n_valid]]
    seen = {item for s in train for item in s}
    valid = [[i for i in s if i in seen] for s in sessions[len(sessions) - n_valid :]]
    prefixes, targets = expand_prefixes(s for s in valid if len(s) >= 2)
    if max_cases is not None and len(prefixes) > max_cases:
        keep = np.sort(np.random.default_rng(seed).choice(len(prefixes), max_cases, False))
        prefixes = [prefixes[i] for i in keep]
        targets = targets[keep]
    return train, prefixes, targets
