"""Item text embeddings in one contiguous matrix.

The scoring thread reads embeddings for every user of every micro-batch (the content query,
the nearest recent item behind a ``similar`` explanation, search steering, diversity). Kept
as one array object per item, each read built a dictionary and then stacked its arrays again
(:func:`numpy.stack` over a list of rows); here a read is one copy of the rows it needs
(``ndarray.take``). Rows of removed items are reused by later ones; the matrix grows by half
when full.

Not thread-safe by itself: :class:`~streams.catalog.catalog.Catalog` holds its lock around
every call (a gather copies the rows, so what a reader got stays valid after the lock).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

INITIAL_ROWS = 256


class EmbeddingTable:
    """item id -> unit vector, stored as rows of one float32 matrix."""

    def __init__(self, dimensions: int, *, initial_rows: int = INITIAL_ROWS) -> None:
        self.dimensions = dimensions
        self._matrix = np.zeros((max(1, initial_rows), dimensions), dtype=np.float32)
        self._rows: dict[str, int] = {}
        self._free: list[int] = []
        self._next = 0

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    def put(self, item_id: str, vector: npt.NDArray[np.float32]) -> None:
        row = self._rows.get(item_id)
        if row is None:
            row = self._rows[item_id] = self._free.pop() if self._free else self._grow()
        self._matrix[row] = vector

    def drop(self, item_id: str) -> None:
        row = self._rows.pop(item_id, None)
        if row is not None:
            self._matrix[row] = 0.0
            self._free.append(row)

    def get(self, item_id: str) -> npt.NDArray[np.float32] | None:
        row = self._rows.get(item_id)
        return None if row is None else self._matrix[row].copy()

    def rows(self, items: Sequence[str]) -> list[int]:
        """Row of each item; -1 for items without an embedding."""
        rows = self._rows
        return [rows.get(item, -1) for item in items]

    def gather(self, rows: Sequence[int] | npt.NDArray[np.intp]) -> npt.NDArray[np.float32]:
        """A copy of the given rows (all must be >= 0), in order."""
        return self._matrix.take(rows, axis=0)  # cheaper than fancy indexing

    def locate(self, items: Sequence[str]) -> tuple[list[str], list[int]]:
        """The items that have an embedding (in order) and their rows."""
        rows = self._rows
        found = [(item, row) for item in items if (row := rows.get(item)) is not None]
        return [item for item, _ in found], [row for _, row in found]

    def present(self, items: Sequence[str]) -> tuple[list[str], npt.NDArray[np.float32]]:
        """The items that have an embedding (in order) and their vectors, one row each."""
        found, rows = self.locate(items)
        return found, self.gather(rows)

    def _grow(self) -> int:
        if self._next == len(self._matrix):
            size = len(self._matrix)
            grown = np.zeros((size + max(1, size // 2), self.dimensions), dtype=np.float32)
            grown[:size] = self._matrix
            self._matrix = grown
        self._next += 1
        return self._next - 1
