"""Strings in, unit-length 512-d float32 vectors out: the multilingual sentence encoder.

The ONNX graph holds its own SentencePiece tokenizer (a custom op from
``onnxruntime-extensions``, registered here), so raw strings go in. It knows 16 languages
(English, Chinese, Japanese, Korean, Arabic, German, French, Spanish, Russian, ...): an English
title and a Chinese title of the same product land close together (cosine 0.7-0.9 measured),
unrelated titles far apart (about 0.15).

Inputs are made safe before they reach the graph, so no text can crash the caller: lone
surrogates are replaced, text is cut to :data:`MAX_CHARS` characters (a 100 KB string costs
3 s otherwise), and a batch is split into chunks of :data:`BATCH`. Blank text has no meaning:
it gets the zero vector (similar to nothing). Usage::

    encoder = TextEncoder.load()  # the file 'streamrec text-model fetch' wrote
    vectors = encoder.encode(["Digital pH meter", "数字pH计"])  # (2, 512) float32
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from models.text.asset import DEFAULT_MODEL_PATH, MODEL_NAME, TextModelError, verify_model

log = logging.getLogger(__name__)

DIMENSIONS: Final = 512
MAX_CHARS: Final = 1000
"""Longer text is cut here; titles, category paths and brands fit easily."""
BATCH: Final = 64
"""Strings per ONNX call: throughput peaks around 16-64 on one CPU thread."""


def clean_text(text: str, max_chars: int = MAX_CHARS) -> str:
    """What the encoder is given for ``text``: valid UTF-8, whitespace collapsed, cut.

    >>> clean_text("  Digital\\n pH   meter ")
    'Digital pH meter'
    >>> clean_text("bad \\ud800 surrogate")
    'bad ? surrogate'
    >>> len(clean_text("x" * 5000))
    1000
    """
    safe = text.encode("utf-8", "replace").decode("utf-8")
    return " ".join(safe[: max_chars * 2].split())[:max_chars]


class TextEncoder:
    """The sentence encoder on one ONNX Runtime session (thread-safe for ``encode``)."""

    name: str = MODEL_NAME
    dimensions: int = DIMENSIONS

    def __init__(self, session: Any, provider: str) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self.provider = provider

    @classmethod
    def load(
        cls, path: Path = DEFAULT_MODEL_PATH, *, device: str = "auto", threads: int = 1
    ) -> TextEncoder:
        """Open the verified model file; raises :class:`TextModelError`."""
        import onnxruntime as ort

        from models.serving import select_providers

        verify_model(path)
        options = ort.SessionOptions()
        options.register_custom_ops_library(str(custom_ops_library()))
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = select_providers(device)
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types
            raise TextModelError(f"cannot load text model {path}: {exc}") from exc
        return cls(session, session.get_providers()[0])

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """(len(texts), 512) unit vectors; blank texts get zero rows."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        cleaned = [clean_text(t) for t in texts]
        rows = [i for i, text in enumerate(cleaned) if text]
        for start in range(0, len(rows), BATCH):
            chunk = rows[start:start + BATCH]
            batch = np.array([cleaned[i] for i in chunk], dtype=object)
            (vectors,) = self._session.run(None, {self._input: batch})
            out[chunk] = _unit(np.asarray(vectors, dtype=np.float32))
        return out


def custom_ops_library() -> Path:
    """The ``onnxruntime-extensions`` shared library (its SentencePiece tokenizer op), found
    without importing the package: ``import onnxruntime_extensions`` imports PyTorch when it
    is installed, which a worker must not pay for (the library itself needs no torch)."""
    spec = importlib.util.find_spec("onnxruntime_extensions")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        found = sorted(Path(location).glob("_extensions_pydll*.so"))
        if found:
            return found[0]
    raise TextModelError("onnxruntime-extensions is not installed: pip install "
                         "onnxruntime-extensions==0.15.2 (the tokenizer op of the text model)")


def _unit(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


__all__ = ["BATCH", "DIMENSIONS", "MAX_CHARS", "TextEncoder", "TextModelError", "clean_text"]
