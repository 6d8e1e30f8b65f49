"""The catalogue reader applied to records as a consumer would hand them over."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.catalog.catalog import Catalog
from streams.catalog.reader import CatalogReader
from streams.catalog.store import CatalogStore
from streams.ops.metrics import create_metrics


@dataclass
class Record:
    key: bytes | None
    value: bytes | None
    offset: int
    partition: int = 0
    topic: str = "items"
    timestamp: int = 1_795_456_800_000


@dataclass
class FakeEncoder:
    """Deterministic 4-d 'embeddings' from the text; counts what it was asked."""

    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.array([[len(t), t.count("a") + 1, t.count("e") + 1, 1.0] for t in texts],
                       dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def item(item_id: str, title: str, **extra: Any) -> bytes:
    return orjson.dumps({"item_id": item_id, "title": title, **extra})


def make_reader(path: Path, encoder: FakeEncoder | None) -> CatalogReader:
    def load() -> FakeEncoder:
        if encoder is None:
            raise FileNotFoundError("no text model here")
        return encoder

    return CatalogReader(
        topic="items", store=CatalogStore(path), catalog=Catalog(dimensions=4),
        metrics=create_metrics(CollectorRegistry()), executor=ThreadPoolExecutor(1),
        load_encoder=load)


async def start(reader: CatalogReader) -> CatalogReader:
    reader.load()
    await reader.open_encoder()
    await reader.embed_missing()
    return reader


def test_items_are_embedded_once_and_text_changes_only_re_embed(tmp_path: Path) -> None:
    encoder = FakeEncoder()

    async def run() -> CatalogReader:
        reader = await start(make_reader(tmp_path, encoder))
        await reader.apply([Record(b"a", item("a", "alpha"), 0),
                            Record(b"b", item("b", "beta"), 1)])
        await reader.apply([Record(b"a", item("a", "alpha", available=False), 2)])
        await reader.apply([Record(b"b", item("b", "beta extra"), 3)])
        return reader

    reader = asyncio.run(run())
    assert encoder.calls == [["alpha.", "beta."], ["beta extra."]]
    assert not reader.catalog.recommendable("a") and reader.catalog.indexed == 1
    assert reader.positions == {0: 4}
    assert reader.metrics.catalog_items_embedded._value.get() == 3


def test_a_restart_recovers_the_catalogue_from_the_store_without_embedding(
    tmp_path: Path,
) -> None:
    first = FakeEncoder()

    async def fill() -> None:
        reader = await start(make_reader(tmp_path, first))
        await reader.apply([Record(b"a", item("a", "alpha"), 0, partition=1),
                            Record(b"b", item("b", "beta"), 5, partition=2)])
        reader.store.close()

    asyncio.run(fill())
    again = FakeEncoder()
    reader = asyncio.run(start(make_reader(tmp_path, again)))
    assert again.calls == []
    assert len(reader.catalog) == 2 and reader.catalog.indexed == 2
    assert reader.positions == {1: 1, 2: 6}


def test_tombstones_remove_and_bad_records_are_skipped(tmp_path: Path) -> None:
    # Bad records are dead-lettered once by the ingest agent (tests/streams/ingest), not by
    # every worker's reader.
    async def run() -> CatalogReader:
        reader = await start(make_reader(tmp_path, FakeEncoder()))
        await reader.apply([Record(b"a", item("a", "alpha"), 0),
                            Record(b"a", None, 1),
                            Record(b"x", item("y", "wrong key"), 2),
                            Record(b"z", b"{not json", 3)])
        return reader

    reader = asyncio.run(run())
    assert len(reader.catalog) == 0 and reader.positions == {0: 4}
    assert reader.store.positions() == {0: 4}


def test_without_an_encoder_items_still_apply_and_get_embedded_once_it_is_back(
    tmp_path: Path,
) -> None:
    async def down() -> CatalogReader:
        reader = await start(make_reader(tmp_path, None))
        await reader.apply([Record(b"a", item("a", "alpha", available=False), 0)])
        reader.store.close()
        return reader

    reader = asyncio.run(down())
    assert reader.encoder_error is not None and reader.metrics.text_encoder_up._value.get() == 0
    assert len(reader.catalog) == 1 and not reader.catalog.recommendable("a")
    assert reader.metrics.catalog_embedding_failures._value.get() == 1
    encoder = FakeEncoder()
    reader = asyncio.run(start(make_reader(tmp_path, encoder)))
    assert encoder.calls == [["alpha."]]
    assert reader.catalog.embeddings(["a"]).keys() == {"a"}


@pytest.mark.parametrize("title", ["x" * 999, "\u200b\u202e混合 text"])
def test_odd_titles_are_applied(tmp_path: Path, title: str) -> None:
    async def run() -> CatalogReader:
        reader = await start(make_reader(tmp_path, FakeEncoder()))
        await reader.apply([Record(b"a", item("a", title), 0)])
        return reader

    assert asyncio.run(run()).catalog.indexed == 1
