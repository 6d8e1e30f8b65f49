"""Keep the catalogue current: read every partition of ``items``, embed new or changed text off
the event path, store, and update the in-memory view.

One task per worker, on the worker's event loop, with its own Kafka consumer outside any
consumer group (every worker must see every item). Per batch of records: decode (bad records
are skipped here: the ingest agent dead-letters them, once per record), embed the texts that
changed in one batched call on the embedding thread, write items and the offsets they bring
the reader to in one RocksDB write, then update the view the scoring thread reads. A record
whose text is unchanged (same hash) keeps its stored embedding: availability and price
changes cost no encoder call.

If the text encoder cannot be loaded, items are still applied (availability keeps working)
without embeddings, the failure is logged and counted, and recommendations use ids only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from models.text.item_text import item_text
from schemas.events import Rejection
from schemas.items import Item, ItemRemoved, decode_item
from streams.catalog.catalog import Catalog
from streams.catalog.records import CatalogRecord, text_hash
from streams.catalog.store import CatalogStore
from streams.ops.metrics import Metrics

log = logging.getLogger(__name__)

Encode = Callable[[Sequence[str]], npt.NDArray[np.float32]]


@dataclass
class CatalogReader:
    topic: str
    store: CatalogStore
    catalog: Catalog
    metrics: Metrics
    executor: Executor
    """The embedding thread: the encoder never runs on the event loop."""
    load_encoder: Callable[[], Encode]
    """Opens the text encoder (slow: called once, on the embedding thread)."""
    max_batch: int = 256
    hashes: dict[str, str] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)
    encoder: Encode | None = None
    encoder_error: str | None = None
    end_at_start: dict[int, int] | None = None
    caught_up: bool = False

    def load(self) -> int:
        """Fill the view from the local store (no topic read, no embedding). Returns items."""
        records = {record.item.item_id: record for record in self.store.records()}
        self.catalog.apply(records)
        self.hashes = {item_id: r.text_hash for item_id, r in records.items()}
        self.positions = self.store.positions()
        self._sample()
        log.info("catalogue: %d items from the local store (%d indexed)",
                 len(self.catalog), self.catalog.indexed)
        return len(records)

    async def open_encoder(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self.encoder = await loop.run_in_executor(self.executor, self.load_encoder)
            self.metrics.text_encoder_up.set(1)
        except Exception as exc:  # any failure: serve without text, say so loudly
            self.encoder_error = f"{type(exc).__name__}: {exc}"[:300]
            self.metrics.text_encoder_up.set(0)
            log.error("text encoder unavailable, recommendations use item ids only: %s",
                      self.encoder_error)

    async def embed_missing(self) -> None:
        """Embed stored items that have none yet (stored while the encoder was down)."""
        if self.encoder is None:
            return
        missing = [r for r in self.store.records() if r.embedding is None]
        for start in range(0, len(missing), self.max_batch):
            chunk = missing[start:start + self.max_batch]
            vectors = await self._embed([_text(r.item) for r in chunk])
            if vectors is None:
                return
            changes = {r.item.item_id: CatalogRecord(r.item, r.text_hash, vector)
                       for r, vector in zip(chunk, vectors, strict=True)}
            self.store.write(changes, {})
            self.catalog.apply(changes)
        self._sample()

    async def apply(self, records: Sequence[Any]) -> None:
        """One batch of consumer records (aiokafka ``ConsumerRecord``s) applied."""
        changes: dict[str, CatalogRecord | None] = {}
        to_embed: dict[str, tuple[Item, str]] = {}
        positions: dict[int, int] = {}
        for record in records:
            positions[record.partition] = record.offset + 1
            outcome = decode_item(record.key, record.value)
            if isinstance(outcome, Rejection):
                # Dead-lettered and counted once, by the ingest agent of the worker whose
                # group owns this partition (every worker's reader sees the record).
                log.debug("skipped catalogue record %s[%d]@%d: %s", record.topic,
                          record.partition, record.offset, outcome.reason)
                continue
            if isinstance(outcome, ItemRemoved):
                changes[outcome.item_id] = None
                to_embed.pop(outcome.item_id, None)
                self.metrics.catalog_updates.labels(kind="remove").inc()
                continue
            text = _text(outcome)
            digest = text_hash(text)
            self.metrics.catalog_updates.labels(kind="upsert").inc()
            known = self.catalog.embeddings([outcome.item_id]).get(outcome.item_id)
            if self.hashes.get(outcome.item_id) == digest and known is not None:
                changes[outcome.item_id] = CatalogRecord(outcome, digest, known)
                to_embed.pop(outcome.item_id, None)
            else:
                to_embed[outcome.item_id] = (outcome, digest)
                changes[outcome.item_id] = CatalogRecord(outcome, digest, None)
        if to_embed:
            self.metrics.catalog_embedding_backlog.set(len(to_embed))
            ids = list(to_embed)
            vectors = await self._embed([_text(to_embed[i][0]) for i in ids])
            for row, item_id in enumerate(ids):
                item, digest = to_embed[item_id]
                changes[item_id] = CatalogRecord(
                    item, digest, None if vectors is None else vectors[row])
        self.store.write(changes, positions)
        self.catalog.apply(changes)
        for item_id, change in changes.items():
            if change is None:
                self.hashes.pop(item_id, None)
            else:
                self.hashes[item_id] = change.text_hash
        self.positions.update(positions)
        if changes:
            self.metrics.catalog_last_applied_timestamp_seconds.set(time.time())
        self._sample()

    async def _embed(self, texts: list[str]) -> npt.NDArray[np.float32] | None:
        if self.encoder is None:
            self.metrics.catalog_embedding_failures.inc(len(texts))
            return None
        started = time.perf_counter()
        try:
            vectors = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.encoder, texts)
        except Exception:  # the encoder must never stop the catalogue
            log.exception("text encoder failed on %d items; stored without text", len(texts))
            self.metrics.catalog_embedding_failures.inc(len(texts))
            return None
        self.metrics.catalog_embedding_seconds.observe(time.perf_counter() - started)
        self.metrics.catalog_items_embedded.inc(len(texts))
        return vectors

    def _sample(self) -> None:
        self.metrics.catalog_items.set(len(self.catalog))
        self.metrics.catalog_indexed_items.set(self.catalog.indexed)
        self.metrics.catalog_embedding_backlog.set(0)

    def note_lag(self, highwaters: dict[int, int]) -> None:
        """Records between what the reader applied and the partitions' ends."""
        lag = sum(max(0, end - self.positions.get(p, 0)) for p, end in highwaters.items())
        self.metrics.catalog_lag_messages.set(lag)
        if self.end_at_start is not None and not self.caught_up:
            self.caught_up = all(self.positions.get(p, 0) >= end
                                 for p, end in self.end_at_start.items())
            if self.caught_up:
                log.info("catalogue caught up: %d items, %d indexed",
                         len(self.catalog), self.catalog.indexed)


def _text(item: Item) -> str:
    return item_text(item.title, item.category, item.brand, item.description)
