"""Choose the final list: maximal marginal relevance over item text, within the caps — the
same arithmetic for the stream (:mod:`streams.ranking.layer`) and for offline evaluation
(``streamrec evaluate --diversity-lambda``).

Greedy: at each step take the candidate maximising
``(1 - lam) * relevance - lam * max(cosine to the items already chosen)``; ``lam = 0`` is
plain relevance order. Relevance is rescaled to [0, 1] first so ``lam`` means the same for
every list. Items without a text embedding have similarity 0 to everything. ``admit`` is
asked before an item is taken (the stream's category caps); an item it refuses is passed
over.

>>> import numpy as np
>>> vectors = {"a": np.array([1.0, 0.0]), "b": np.array([0.99, 0.14]), "c": np.array([0.0, 1.0])}
>>> select([("a", 3.0), ("b", 2.9), ("c", 1.0)], vectors, k=2, lam=0.0)
['a', 'b']
>>> select([("a", 3.0), ("b", 2.9), ("c", 1.0)], vectors, k=2, lam=0.7)
['a', 'c']
>>> select([("a", 3.0), ("b", 2.9), ("c", 1.0)], {}, k=2, lam=0.0,
...        admit=lambda item: item != "b")
['a', 'c']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt


def select(
    candidates: Sequence[tuple[str, float]],
    vectors: Mapping[str, npt.NDArray[np.float32]],
    *,
    k: int,
    lam: float,
    admit: Callable[[str], bool] | None = None,
) -> list[str]:
    """The chosen item ids, in order."""
    if not candidates or k <= 0:
        return []
    items = [item for item, _ in candidates]
    scores = np.array([score for _, score in candidates], dtype=np.float64)
    span = scores.max() - scores.min()
    relevance = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    use_mmr = lam > 0 and any(item in vectors for item in items)
    if use_mmr:
        dim = len(next(iter(vectors.values())))
        matrix = np.stack([vectors.get(item, np.zeros(dim, dtype=np.float32))
                           for item in items]).astype(np.float64)
        closest = np.full(len(items), -np.inf)  # max similarity to what is chosen so far
    taken: list[int] = []
    available = np.ones(len(items), dtype=bool)
    while len(taken) < k and available.any():
        if use_mmr and taken:
            value = (1 - lam) * relevance - lam * np.maximum(closest, 0.0)
        else:
            value = relevance.copy()
        value[~available] = -np.inf
        best = int(np.argmax(value))  # ties: the earlier candidate
        available[best] = False
        if admit is not None and not admit(items[best]):
            continue
        taken.append(best)
        if use_mmr:
            closest = np.maximum(closest, matrix @ matrix[best])
    return [items[i] for i in taken]


def intra_list_diversity(
    vectors: Sequence[npt.NDArray[np.float32]] | npt.NDArray[np.float32],
) -> float | None:
    """Mean pairwise cosine distance (1 - cosine) of a list's unit item vectors (a sequence
    of them, or their rows); None below two. For unit vectors the sum of all pairwise cosines
    is ``|sum v|^2 - n``, so this costs one sum, not n^2 products.

    >>> import numpy as np
    >>> intra_list_diversity([np.array([1.0, 0.0]), np.array([0.0, 1.0])])
    1.0
    >>> round(intra_list_diversity([np.array([1.0, 0.0])] * 3), 6)
    0.0
    """
    n = len(vectors)
    if n < 2:
        return None
    total: npt.NDArray[np.float64] = np.asarray(vectors).sum(axis=0, dtype=np.float64)
    mean_similarity = (float(np.dot(total, total)) - n) / (n * (n - 1))
    return 1.0 - mean_similarity


def category_coverage(items: Sequence[str], category_of: Callable[[str], str | None],
                      k: int) -> float:
    """Distinct categories among a list's items, over ``k`` (1.0: every item from another
    category; items without a category count as one category together).

    >>> category_coverage(["a", "b", "c"], {"a": "Lab", "b": "Lab", "c": "Tools"}.get, 3)
    0.6666666666666666
    """
    if k <= 0:
        return 0.0
    return len({category_of(item) for item in items}) / k


def search_gains(similarities: Mapping[str, float], weight: float) -> dict[str, float]:
    """What a search adds to each candidate's relevance: ``weight * cosine / best cosine``
    (negative cosines count 0). Relative to the best match, so a query steers as strongly
    across languages (where cosines run lower) as within one.

    >>> search_gains({"a": 0.6, "b": 0.3, "c": -0.2}, 2.0)
    {'a': 2.0, 'b': 1.0, 'c': 0.0}
    """
    best = max((s for s in similarities.values()), default=0.0)
    if best <= 0 or weight <= 0:
        return dict.fromkeys(similarities, 0.0)
    return {item: weight * max(0.0, s) / best for item, s in similarities.items()}
