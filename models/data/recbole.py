"""Sequential datasets in the RecBole / UniSRec atomic-file layout, leave-one-out split, with
item text: ``amazon_scientific/`` (``../shared/data/README.md``) and its siblings.

A directory holds, for one dataset name ``NAME``:

* ``NAME.item2index``: ``external id<TAB>index`` per line, indices ``0..n-1``;
* ``NAME.text``: header ``item_id:token<TAB>text:token_seq``, then ``external id<TAB>text``
  (for Amazon: ``title. category path. brand.``, given to the text encoder as it is);
* ``NAME.train.inter``: header, then ``user<TAB>history<TAB>next item`` for **every prefix**
  of each user's training sequence (histories are the last 50 items at most);
* ``NAME.valid.inter`` / ``NAME.test.inter``: one row per user with the same columns, the
  held-out next item (the test history ends with the validation item).

:func:`load_recbole` turns it into a :class:`~models.data.benchmark.Benchmark`: one
training session per user (the sequence rebuilt from the prefix rows and checked against
every row), the validation and test rows as cases, the item texts, and the external ids as
vocabulary. Index ``i`` of the files is item ``i + 1`` here (``0`` is padding).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from models.data.benchmark import Benchmark
from models.errors import BenchmarkNotFoundError, InvalidBenchmarkError

log = logging.getLogger(__name__)

TRAIN_SUFFIX = ".train.inter"
"""The file whose presence marks a RecBole-layout directory (``NAME.train.inter``)."""


def dataset_name(directory: Path) -> str | None:
    """``NAME`` of the one ``NAME.train.inter`` in ``directory``; None when there is none.

    >>> dataset_name(Path("/nowhere")) is None
    True
    """
    names = sorted(p.name[: -len(TRAIN_SUFFIX)] for p in Path(directory).glob("*" + TRAIN_SUFFIX))
    if len(names) > 1:
        raise InvalidBenchmarkError(
            f"{directory} holds several datasets ({', '.join(names)}): keep one per directory"
        )
    return names[0] if names else None


def _lines(path: Path, header: bool) -> Iterator[tuple[int, list[str]]]:
    """``(line number, tab-separated fields)`` of each non-blank line, header skipped."""
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if (header and lineno == 1) or not line.strip():
                continue
            yield lineno, line.rstrip("\r\n").split("\t")


def _item_index(path: Path) -> tuple[str, ...]:
    """External ids ordered by their 0-based index."""
    by_index: dict[int, str] = {}
    for lineno, fields in _lines(path, header=False):
        try:
            item, index = fields[0], int(fields[1])
        except (IndexError, ValueError) as exc:
            raise InvalidBenchmarkError(f"{path}:{lineno}: expected 'id<TAB>index'") from exc
        if index in by_index or not item:
            raise InvalidBenchmarkError(f"{path}:{lineno}: index {index} given twice or empty id")
        by_index[index] = item
    if sorted(by_index) != list(range(len(by_index))) or not by_index:
        raise InvalidBenchmarkError(f"{path}: indices must be exactly 0..n-1")
    return tuple(by_index[i] for i in range(len(by_index)))


def _texts(path: Path, item_ids: tuple[str, ...]) -> tuple[str, ...]:
    """Text of each item in index order; ``""`` for an item without a text row."""
    index = {item: i for i, item in enumerate(item_ids)}
    texts = [""] * len(item_ids)
    unknown = 0
    for lineno, fields in _lines(path, header=True):
        if len(fields) < 2:
            raise InvalidBenchmarkError(f"{path}:{lineno}: expected 'id<TAB>text'")
        at = index.get(fields[0])
        if at is None:
            unknown += 1
        else:
            texts[at] = fields[1]
    missing = texts.count("")
    if unknown or missing:
        log.warning("%s: %d rows for unknown items ignored, %d items without text",
                    path, unknown, missing)
    return tuple(texts)


def _cases(
    path: Path, n_items: int
) -> Iterator[tuple[int, str, list[int], int]]:
    """``(line number, user, history, next item)`` per row, items shifted to ``1..n``."""
    for lineno, fields in _lines(path, header=True):
        try:
            user, history, target = fields[0], fields[1].split(), int(fields[2])
            items = [int(i) + 1 for i in history]
        except (IndexError, ValueError) as exc:
            raise InvalidBenchmarkError(
                f"{path}:{lineno}: expected 'user<TAB>item indices<TAB>item index'"
            ) from exc
        target += 1
        if not items or not 1 <= min(*items, target) <= max(*items, target) <= n_items:
            raise InvalidBenchmarkError(
                f"{path}:{lineno}: empty history or item index outside 0..{n_items - 1}"
            )
        yield lineno, user, items, target


def _sequences(path: Path, n_items: int) -> dict[str, list[int]]:
    """Each user's training sequence rebuilt from the prefix rows, in user file order.

    The rows of a user are taken shortest history first (file order reversed among equal
    lengths, as RecBole writes them newest first); each row's history must end the sequence
    built so far, and its next item extends it.
    """
    rows: dict[str, list[tuple[int, list[int], int]]] = {}
    for lineno, user, items, target in _cases(path, n_items):
        rows.setdefault(user, []).append((lineno, items, target))
    sequences: dict[str, list[int]] = {}
    for user, user_rows in rows.items():
        ordered = sorted(reversed(user_rows), key=lambda row: len(row[1]))
        sequence = list(ordered[0][1])
        for lineno, items, target in ordered:
            if sequence[-len(items):] != items:
                raise InvalidBenchmarkError(
                    f"{path}:{lineno}: history does not continue user {user}'s earlier rows"
                )
            sequence.append(target)
        sequences[user] = sequence
    return sequences


def load_recbole(directory: Path) -> Benchmark:
    """Read a RecBole-layout directory (see the module docstring) into a benchmark.

    Training sessions are the users' training sequences (users with no training row
    contribute their validation history); validation and test cases are the ``.valid`` and
    ``.test`` rows. The fingerprint is the sha256 of the item-index, text and training files.
    """
    directory = Path(directory)
    name = dataset_name(directory)
    if name is None:
        raise BenchmarkNotFoundError(f"{directory} holds no NAME{TRAIN_SUFFIX} file")
    paths = {part: directory / f"{name}.{part}"
             for part in ("item2index", "text", "train.inter", "valid.inter", "test.inter")}
    for path in paths.values():
        if not path.is_file():
            raise BenchmarkNotFoundError(f"{path} not found (a {name} dataset needs it)")
    item_ids = _item_index(paths["item2index"])
    n_items = len(item_ids)
    sequences = _sequences(paths["train.inter"], n_items)
    valid_prefixes, valid_targets = [], []
    for lineno, user, items, target in _cases(paths["valid.inter"], n_items):
        known = sequences.setdefault(user, list(items))
        if known[-len(items):] != items:
            raise InvalidBenchmarkError(
                f"{paths['valid.inter']}:{lineno}: history is not user {user}'s training sequence"
            )
        valid_prefixes.append(items)
        valid_targets.append(target)
    test = [(items, target) for _, _, items, target in _cases(paths["test.inter"], n_items)]
    if not sequences or not test:
        raise InvalidBenchmarkError(f"{directory}: no training or no test rows")
    digest = hashlib.sha256()
    for part in ("item2index", "text", "train.inter"):
        digest.update(paths[part].read_bytes())
    log.info("%s: %d users, %d items, %d validation and %d test cases", name, len(sequences),
             n_items, len(valid_prefixes), len(test))
    return Benchmark(
        train_sessions=list(sequences.values()),
        test_prefixes=[items for items, _ in test],
        test_targets=np.asarray([target for _, target in test], dtype=np.int64),
        n_items=n_items,
        fingerprint=digest.hexdigest(),
        item_ids=item_ids,
        valid_prefixes=valid_prefixes,
        valid_targets=np.asarray(valid_targets, dtype=np.int64),
        item_texts=_texts(paths["text"], item_ids),
    )
