"""Produce many records with one call per partition, below Faust's per-message send.

Faust's ``topic.send`` costs tens of microseconds of Python per record (futures, callbacks,
attachments); the aiokafka producer underneath it can append a record to a batch in about a
microsecond. The state agent emits one recommendation and one changelog record per touched
user per micro-batch, so it builds record batches itself on Faust's own producer (the one
Faust flushes before every offset commit) and awaits their delivery before the micro-batch
counts as done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where a partition's records landed: offsets ``first_offset .. last_offset``."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int


@dataclass
class PartitionBatches:
    """Records for one topic, grouped by partition, sent as record batches."""

    producer: Any  # aiokafka.AIOKafkaProducer
    topic: str
    records: dict[int, list[tuple[bytes | None, bytes | None]]] = field(default_factory=dict)
    pending: list[tuple[int, int, asyncio.Future[Any]]] = field(default_factory=list)

    def add(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        self.records.setdefault(partition, []).append((key, value))

    def __len__(self) -> int:
        return sum(len(r) for r in self.records.values())

    async def send(self) -> None:
        """Queue every record added so far as record batches (see :meth:`delivered`)."""
        for partition, records in self.records.items():
            for count, batch in self._batches(records):
                future = await self.producer.send_batch(batch, self.topic, partition=partition)
                self.pending.append((partition, count, future))
        self.records = {}

    def _batches(self, records: list[tuple[bytes | None, bytes | None]]
                 ) -> Iterable[tuple[int, Any]]:
        batch, count = self.producer.create_batch(), 0
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                yield count, batch
                batch, count = self.producer.create_batch(), 0
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"record for {self.topic} larger than a whole batch")
            count += 1
        if count:
            yield count, batch

    async def delivered(self) -> list[Delivered]:
        """Wait for the batches queued by :meth:`send`; the offsets each partition got."""
        pending, self.pending = self.pending, []
        last: dict[int, Delivered] = {}
        for partition, count, future in pending:
            metadata = await future
            first = metadata.offset
            previous = last.get(partition)
            last[partition] = Delivered(
                self.topic, partition,
                previous.first_offset if previous else first, first + count - 1,
            )
        return list(last.values())
