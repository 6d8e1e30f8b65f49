"""The worker's local copy of the catalogue: a RocksDB of item records plus, in the same
atomic write, the ``items`` topic offsets they reflect. A restarted worker resumes reading
after those offsets, so nothing is applied twice or lost, and nothing is embedded again.

The store is this worker's own cache of a compacted topic, not a Faust table: every worker
holds all of it, and the topic itself is the changelog (deleting the directory only costs
one re-read and re-embedding of the catalogue).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

from rocksdict import Options, Rdict, WriteBatch

from streams.catalog.records import CatalogRecord
from streams.state.bounds import StateDecodeError

log = logging.getLogger(__name__)

_ITEM: Final = b"i"
_OFFSET: Final = b"o"
_PARTITION: Final = struct.Struct(">I")
_POSITION: Final = struct.Struct(">q")
MEMTABLE_BYTES: Final = 4 * 1024 * 1024


class CatalogStore:
    """Items by id, and the next offset to read per ``items`` partition."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        # RocksDB's default 64 MiB memtable would hold a 10k-item catalogue (2 KiB a record)
        # in memory next to the embeddings the catalogue view already keeps: flush sooner.
        options.set_write_buffer_size(MEMTABLE_BYTES)
        self._db = Rdict(str(path), options)

    def close(self) -> None:
        self._db.close()

    def records(self) -> Iterator[CatalogRecord]:
        """Every stored item; an undecodable record is logged and skipped (the topic still
        holds the item: it comes back with its next update)."""
        for _key, value in self._items(_ITEM):
            try:
                yield CatalogRecord.from_bytes(value)
            except StateDecodeError as exc:
                log.error("catalogue store: skipped an undecodable item record (%s)", exc)

    def positions(self) -> dict[int, int]:
        """Partition -> next offset to read."""
        out = {}
        for key, value in self._items(_OFFSET):
            (partition,) = _PARTITION.unpack(key[1:])
            (out[partition],) = _POSITION.unpack(value)
        return out

    def _items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Keys and values under ``prefix`` (raw mode: both are bytes)."""
        for key, value in self._db.items(from_key=prefix):
            if not (isinstance(key, bytes) and isinstance(value, bytes)
                    and key.startswith(prefix)):
                break
            yield key, value

    def write(self, changes: Mapping[str, CatalogRecord | None],
              positions: Mapping[int, int]) -> None:
        """Apply puts and deletes together with the positions they bring the reader to."""
        batch = WriteBatch(raw_mode=True)
        for item_id, record in changes.items():
            key = _ITEM + item_id.encode("utf-8")
            if record is None:
                batch.delete(key)
            else:
                batch.put(key, record.to_bytes())
        for partition, position in positions.items():
            batch.put(_OFFSET + _PARTITION.pack(partition), _POSITION.pack(position))
        self._db.write(batch)
