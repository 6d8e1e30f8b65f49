"""The item vocabulary: round trip through ``vocab.json`` and rejection of bad content."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.errors import InvalidInputError, InvalidVocabularyError
from models.vocabulary import Vocabulary


def test_vocabulary_round_trip(tmp_path: Path) -> None:
    vocab = Vocabulary(("sku-9", "sku-2"))
    vocab.save(tmp_path / "vocab.json")
    assert json.loads((tmp_path / "vocab.json").read_text()) == {"items": ["sku-9", "sku-2"]}
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded == vocab and len(loaded) == 2
    assert loaded.encode(["sku-2", "new"]) == [2, 0]
    assert loaded.decode([1]) == ["sku-9"]
    assert Vocabulary.identity(3).items == ("1", "2", "3")


def test_vocabulary_rejects_bad_content(tmp_path: Path) -> None:
    with pytest.raises(InvalidVocabularyError):
        Vocabulary(("a", "a"))
    with pytest.raises(InvalidInputError):
        Vocabulary(("a",)).decode([0])
    (tmp_path / "vocab.json").write_text('["a"]')
    with pytest.raises(InvalidVocabularyError):
        Vocabulary.load(tmp_path / "vocab.json")
