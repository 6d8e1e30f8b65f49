"""One partition of a Faust RocksDB table, read and written in bulk.

Faust's table API costs a changelog send per key. The state agent instead reads every user
of a micro-batch with one multi-get, writes them with one RocksDB write batch, produces the
matching changelog records as record batches (:mod:`streams.kafka.batch_producer`) to the same
changelog partition Faust would use, and records the changelog offset it reached exactly as
Faust's own changelog callback does. Faust's recovery, standby replicas and rebalancing work
on these records unchanged: they are ordinary keyed changelog records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from faust.types import TP
from rocksdict import WriteBatch


@dataclass(frozen=True)
class PartitionStore:
    """Bulk access to partition ``partition`` of ``table`` (a RocksDB-backed Faust table)."""

    table: Any
    partition: int

    @property
    def _store(self) -> Any:
        return self.table.data

    @property
    def _db(self) -> Any:
        return self._store._db_for_partition(self.partition)  # noqa: SLF001

    @property
    def changelog_topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values of ``keys`` in this partition (None where absent), one multi-get."""
        if not keys:
            return []
        return list(self._db[list(keys)])

    def iterate_from(self, start: bytes) -> KeyScan:
        """Keys and values of this partition from ``start`` on, in key order."""
        return KeyScan(self._db.iter(), start)

    def write(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Apply puts (bytes) and deletes (None) atomically to this partition's database."""
        batch = WriteBatch(raw_mode=True)
        for key, value in changes.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self._db.write(batch)

    def persist_changelog_offset(self, offset: int) -> None:
        """Remember that the changelog holds everything up to ``offset`` (recovery starts
        after it), as Faust does when its own changelog send is acknowledged."""
        self._store.set_persisted_offset(TP(self.changelog_topic, self.partition), offset)


class KeyScan:
    """Iterates ``(key, value)`` from a start key; :meth:`next_key` says where it stopped
    (``b""`` once the end was reached, so the next scan starts over)."""

    def __init__(self, iterator: Any, start: bytes) -> None:
        self._iterator = iterator
        self._iterator.seek(start)

    def __iter__(self) -> KeyScan:
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        if not self._iterator.valid():
            raise StopIteration
        item = (self._iterator.key(), self._iterator.value())
        self._iterator.next()
        return item

    def next_key(self) -> bytes:
        return bytes(self._iterator.key()) if self._iterator.valid() else b""
