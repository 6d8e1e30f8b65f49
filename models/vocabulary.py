"""The item vocabulary: external item ids (strings) <-> dense indices ``1..n_items``.

Index ``0`` is padding and out-of-vocabulary (see ``docs/contracts.md``). A model directory
stores its vocabulary as ``vocab.json`` = ``{"items": [...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from models.errors import InvalidInputError, InvalidVocabularyError


@dataclass(frozen=True)
class Vocabulary:
    """External item ids (strings) <-> dense indices ``1..len(items)``; unknown ids -> 0.

    ``items[i - 1]`` is the external id of index ``i``.

    >>> v = Vocabulary(("a", "b"))
    >>> v.encode(["b", "zzz", "a"]), v.decode([1, 2])
    ([2, 0, 1], ['a', 'b'])
    >>> v.index("zzz"), len(v), Vocabulary.identity(3).items
    (0, 2, ('1', '2', '3'))
    """

    items: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {item: i for i, item in enumerate(self.items, start=1)}
        if len(index) != len(self.items):
            raise InvalidVocabularyError("vocabulary has duplicated item ids")
        if any(not isinstance(item, str) or not item for item in self.items):
            raise InvalidVocabularyError("vocabulary item ids must be non-empty strings")
        object.__setattr__(self, "_index", index)

    @classmethod
    def identity(cls, n_items: int) -> Vocabulary:
        """The benchmark vocabulary: external id ``"i"`` is index ``i`` for ``i in 1..n``."""
        return cls(tuple(str(i) for i in range(1, n_items + 1)))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        """Read a ``vocab.json`` file."""
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidVocabularyError(f"cannot read vocabulary {path}: {exc}") from exc
        items = payload.get("items") if isinstance(payload, dict) else None
        if not isinstance(items, list):
            raise InvalidVocabularyError(f'{path}: expected {{"items": [...]}}')
        return cls(tuple(items))

    def save(self, path: Path) -> None:
        """Write ``vocab.json`` (``{"items": [...]}``)."""
        Path(path).write_text(json.dumps(self.to_json_dict()), encoding="utf-8")

    def to_json_dict(self) -> dict[str, list[str]]:
        """The ``vocab.json`` payload."""
        return {"items": list(self.items)}

    def __len__(self) -> int:
        return len(self.items)

    def index(self, item_id: str) -> int:
        """Index of an external id, 0 when unknown."""
        return self._index.get(item_id, 0)

    def encode(self, item_ids: Iterable[str]) -> list[int]:
        """Indices of external ids, 0 for each unknown one."""
        return [self._index.get(item, 0) for item in item_ids]

    def decode(self, indices: Iterable[int]) -> list[str]:
        """External ids of indices ``1..n``; raises on 0 or out-of-range indices."""
        out = []
        for i in indices:
            if not 1 <= i <= len(self.items):
                raise InvalidInputError(f"item index {i} outside 1..{len(self.items)}")
            out.append(self.items[i - 1])
        return out
