"""Offline data: every source read into one :class:`Benchmark` (training sessions,
validation and test cases, optional item texts), and the protocols applied to it.

* ``benchmark``: the :class:`Benchmark` structure, :func:`expand_prefixes`,
  :func:`split_validation` (validation carved from training sessions);
* ``diginetica``: directories in the Diginetica format (``train_sessions.txt``, ``test.tsv``);
* ``recbole``: RecBole/UniSRec leave-one-out directories with item text
  (``amazon_scientific/``: ``Scientific.text``, ``.item2index``, ``.train/valid/test.inter``);
* ``events``: JSON-lines event files in the stream's event schema, split by time;
* ``cold_items``: the cold-item protocol (a seeded share of items hidden from training).

:func:`load_benchmark` reads either kind of directory. Datasets are never copied into the
repository: callers pass their path (``--benchmark``/``--data-dir``).
"""

from __future__ import annotations

from pathlib import Path

from models.data.benchmark import (
    STANDARD,
    Benchmark,
    expand_prefixes,
    split_validation,
)
from models.data.cold_items import COLD_ITEMS, cold_item_split, hidden_items
from models.data.diginetica import TEST_FILE, TRAIN_FILE, is_diginetica_dir, load_diginetica
from models.data.events import EVENT_TYPES, EventCorpus, load_event_sessions
from models.data.recbole import TRAIN_SUFFIX, dataset_name, load_recbole
from models.errors import BenchmarkNotFoundError


def load_benchmark(directory: Path) -> Benchmark:
    """Read a benchmark directory: the Diginetica format (``train_sessions.txt``,
    ``test.tsv``) or the RecBole layout (``NAME.train.inter`` and its siblings)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BenchmarkNotFoundError(f"benchmark directory {directory} not found")
    if not is_diginetica_dir(directory) and dataset_name(directory) is not None:
        return load_recbole(directory)
    return load_diginetica(directory)


__all__ = [
    "COLD_ITEMS", "EVENT_TYPES", "STANDARD", "TEST_FILE", "TRAIN_FILE", "TRAIN_SUFFIX",
    "Benchmark", "EventCorpus", "cold_item_split", "expand_prefixes", "hidden_items",
    "load_benchmark", "load_diginetica", "load_event_sessions", "load_recbole",
    "split_validation",
]
