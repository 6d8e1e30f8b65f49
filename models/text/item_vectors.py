"""Item text vectors for offline training and evaluation, embedded once and cached on disk.

:func:`item_vectors` turns a catalogue's item texts (``Benchmark.item_texts``) into a
``(n_items + 1, 512)`` float32 table: row 0 (padding) and items without text are zero rows,
every other row is the encoder's unit vector of the item's text. The first call embeds the
texts (about 900 items/s on one thread) and writes ``CACHE_DIR/<encoder>-<sha256>.npy``,
keyed by the encoder and a hash of the texts; later calls read that file. Nothing on a
scoring path ever embeds text: models receive the finished table.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from models.text.asset import DEFAULT_MODEL_PATH, MODEL_NAME

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR: Final = Path("var/text-vectors")
"""Where cached tables go unless told otherwise (relative to the working directory)."""


class Encoder(Protocol):
    """What :func:`item_vectors` needs of an encoder (``models.text.encoder.TextEncoder``)."""

    name: str
    dimensions: int

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


def texts_key(texts: Sequence[str], encoder_name: str = MODEL_NAME) -> str:
    """Cache key of a text table: the encoder's name and the sha256 of the texts.

    >>> texts_key(["a", "b"]) == texts_key(["a", "b"]) != texts_key(["ab", ""])
    True
    """
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8", "replace")
        digest.update(len(encoded).to_bytes(8, "little") + encoded)
    return f"{encoder_name}-{digest.hexdigest()[:24]}"


def item_vectors(
    texts: Sequence[str],
    *,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
    encoder: Encoder | None = None,
    encoder_path: Path = DEFAULT_MODEL_PATH,
) -> npt.NDArray[np.float32]:
    """``(len(texts) + 1, d)`` table: row ``i`` embeds ``texts[i - 1]``, row 0 is zero.

    ``encoder`` defaults to the multilingual encoder at ``encoder_path``, loaded only when
    the table is not cached (raises ``TextModelError`` when that file is missing: run
    ``streamrec text-model fetch``). ``cache_dir=None`` disables the cache.
    """
    name = encoder.name if encoder is not None else MODEL_NAME
    path = None if cache_dir is None else Path(cache_dir) / f"{texts_key(texts, name)}.npy"
    if path is not None and path.is_file():
        table = np.load(path)
        if table.shape[0] == len(texts) + 1 and table.dtype == np.float32:
            log.info("item text vectors read from %s", path)
            return table
        log.warning("%s has shape %s, not (%d, d): embedding again", path, table.shape,
                    len(texts) + 1)
    if encoder is None:
        from models.text.encoder import TextEncoder  # onnxruntime: only when embedding

        encoder = TextEncoder.load(encoder_path, device="cpu", threads=1)
    started = time.perf_counter()
    table = np.zeros((len(texts) + 1, encoder.dimensions), dtype=np.float32)
    table[1:] = encoder.encode(list(texts))
    seconds = time.perf_counter() - started
    log.info("embedded %d item texts in %.1f s (%.0f items/s)", len(texts), seconds,
             len(texts) / max(seconds, 1e-9))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial.npy")
        np.save(partial, table)
        os.replace(partial, path)
        log.info("item text vectors cached in %s", path)
    return table
