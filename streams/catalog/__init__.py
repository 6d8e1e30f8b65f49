"""The catalogue every worker holds whole: items, their availability and text embeddings.

User state is partitioned; the catalogue is not. Each worker reads every partition of the
compacted ``items`` topic itself (no consumer group), keeps the items and their embeddings in
a local RocksDB with the offsets it applied, and rebuilds its nearest-neighbour index from
that store at start-up, so a restart neither re-reads the topic from the beginning nor
re-embeds anything.

:mod:`~streams.catalog.records` one stored item (attributes, text hash, embedding) ·
:mod:`~streams.catalog.store` the local RocksDB with its offsets ·
:mod:`~streams.catalog.index` exact inner-product search over available items (faiss) ·
:mod:`~streams.catalog.catalog` the in-memory view the scoring thread asks ·
:mod:`~streams.catalog.reader` the task that keeps all of it up to date.
"""
