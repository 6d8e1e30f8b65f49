"""A shopper's recent search steers their next recommendations.

The query is embedded with the catalogue's text encoder (one batched call for the queries a
micro-batch has not seen before; :class:`QueryEmbeddings` keeps a bounded cache keyed by the
normalised query). Every candidate then gains ``boost * decay * max(0, cosine(query,
item))`` divided by the best match's cosine (so a query steers as strongly across languages,
where cosines run lower, as within one) on top of its relevance, where ``decay = 0.5 ** (age
/ half_life)`` fades the search out over the session; the items nearest to the query join
the candidates, so a search alone (a new user whose first event is a search) yields items
that match it, in any language the encoder knows.

>>> normalise_query("  Digital  PH Meter ")
'digital ph meter'
>>> round(search_weight(age_s=900.0, half_life_s=900.0, boost=1.0), 3)
0.5
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

Encode = Callable[[Sequence[str]], npt.NDArray[np.float32]]


def normalise_query(query: str) -> str:
    return " ".join(query.split()).casefold()


def search_weight(*, age_s: float, half_life_s: float, boost: float) -> float:
    """How much the query still counts ``age_s`` after the search (0 when ``boost`` is 0)."""
    if boost <= 0 or half_life_s <= 0:
        return 0.0
    return float(boost * 0.5 ** (max(0.0, age_s) / half_life_s))


class QueryEmbeddings:
    """Query text -> unit vector, with a bounded least-recently-used cache."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._cache)

    def lookup(self, queries: Sequence[str], encode: Encode
               ) -> dict[str, npt.NDArray[np.float32]]:
        """Vectors for ``queries`` (by their normalised form); one encoder call for the
        ones not cached."""
        wanted = {normalise_query(q) for q in queries if q.strip()}
        found: dict[str, npt.NDArray[np.float32]] = {}
        with self._lock:
            for key in wanted:
                vector = self._cache.get(key)
                if vector is not None:
                    self._cache.move_to_end(key)
                    found[key] = vector
        missing = sorted(wanted - found.keys())
        self.hits += len(found)
        self.misses += len(missing)
        if missing:
            vectors = encode(missing)
            with self._lock:
                for key, vector in zip(missing, vectors, strict=True):
                    found[key] = vector
                    self._cache[key] = vector
                while len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
        return found
