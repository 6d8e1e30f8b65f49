"""Reading model directories: what ``streamrec train`` writes and the stream serves.

```
MODEL_DIR/
  model.onnx        the exported scorer (see models.onnx_contract; described in meta.json)
  encoder.onnx      the session encoder        } the retrieval pair (optional: directories
  item_vectors.npy  the item table it scores   } exported before it have neither), plus
  item_bias.npy     per-item offsets           } item_bias.npy only when needed
  vocab.json        {"items": ["<external id of index 1>", ...]}
  config.json       the model's hyper-parameters (its frozen dataclass config)
  meta.json         name, version, created_at, architecture, n_items, max_seq_len,
                    training_data_fingerprint, onnx: {inputs, outputs, opset, parity,
                    encoder: {file, item_vectors, item_bias, dim, inputs, outputs, opset,
                    parity}}, plus training details
  metrics.json      the offline evaluation it passed
```
``model.onnx`` is written last-but-metrics and only after its parity check passed, so a
directory with a ``meta.json`` always holds a scorer that agrees with its PyTorch model; the
retrieval pair is written only after it reproduced ``model.onnx``'s scores (recorded under
``onnx.encoder.parity``). This is the read side (json, numpy and the standard library only);
writing lives in ``models.model_dir_writer``, which needs PyTorch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.errors import ModelDirectoryError, ModelsError
from models.onnx_contract import ENCODER_FILE, ITEM_BIAS_FILE, ITEM_VECTORS_FILE
from models.vocabulary import Vocabulary

MODEL_FILE = "model.onnx"
VOCAB_FILE = "vocab.json"
CONFIG_FILE = "config.json"
META_FILE = "meta.json"
METRICS_FILE = "metrics.json"
REQUIRED_META = (
    "name", "version", "created_at", "architecture", "n_items", "max_seq_len",
    "training_data_fingerprint", "onnx",
)


@dataclass(frozen=True)
class ModelDirectory:
    """A read, validated model directory."""

    path: Path
    meta: dict[str, Any]
    config: dict[str, Any]
    vocabulary: Vocabulary
    metrics: dict[str, Any]

    @property
    def onnx_path(self) -> Path:
        """The exported scorer, ``MODEL_DIR/model.onnx``."""
        return self.path / MODEL_FILE

    @property
    def encoder_meta(self) -> dict[str, Any] | None:
        """``meta.json``'s ``onnx.encoder`` section, or None (no retrieval pair)."""
        section = (self.meta.get("onnx") or {}).get("encoder")
        return section if isinstance(section, dict) else None

    @property
    def has_encoder(self) -> bool:
        """Whether the directory holds a retrieval pair whose export parity check passed
        (``encoder.onnx`` and ``item_vectors.npy`` present, ``onnx.encoder.parity`` passed).

        >>> ModelDirectory(Path("/nowhere"), {"onnx": {}}, {}, Vocabulary(()), {}).has_encoder
        False
        """
        section = self.encoder_meta
        if section is None:
            return False
        parity = section.get("parity") or {}
        passed = parity.get("top20_identical") is True and int(parity.get("cases") or 0) > 0
        return passed and self.encoder_path.is_file() and (self.path / ITEM_VECTORS_FILE).is_file()

    @property
    def encoder_path(self) -> Path:
        """The session encoder, ``MODEL_DIR/encoder.onnx`` (see :attr:`has_encoder`)."""
        return self.path / ENCODER_FILE

    def item_vectors(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
        """``(item_vectors (n_items + 1, d), item_bias (n_items + 1,) or None)`` of the
        retrieval pair, checked against ``meta.json`` (shape, dimension, finite values)."""
        section = self.encoder_meta
        if not self.has_encoder or section is None:
            raise ModelDirectoryError(f"{self.path} has no retrieval pair (encoder.onnx, "
                                      "item_vectors.npy with a passed parity record)")
        vectors = _read_array(self.path / ITEM_VECTORS_FILE)
        expected = (self.n_items + 1, int(section.get("dim") or 0))
        if vectors.shape != expected:
            raise ModelDirectoryError(f"{self.path / ITEM_VECTORS_FILE} has shape "
                                      f"{vectors.shape}, meta.json says {expected}")
        bias = None
        if section.get("item_bias"):
            bias = _read_array(self.path / ITEM_BIAS_FILE)
            if bias.shape != (self.n_items + 1,):
                raise ModelDirectoryError(f"{self.path / ITEM_BIAS_FILE} has shape "
                                          f"{bias.shape}, expected {(self.n_items + 1,)}")
        if not np.isfinite(vectors).all() or (bias is not None and
                                              not np.isfinite(bias[1:]).all()):
            raise ModelDirectoryError(f"{self.path}: the item vectors hold NaN or infinity")
        return vectors, bias

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    @property
    def n_items(self) -> int:
        return int(self.meta["n_items"])

    @property
    def max_seq_len(self) -> int:
        return int(self.meta["max_seq_len"])


def has_model_file(path: Path) -> bool:
    """Whether ``path`` looks like a model directory (it holds ``model.onnx``).

    >>> has_model_file(Path("/nowhere"))
    False
    """
    return (Path(path) / MODEL_FILE).is_file()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelDirectoryError(f"{path} is missing: not a streamrec model directory") from exc
    except (OSError, ValueError) as exc:
        raise ModelDirectoryError(f"cannot read {path}: {exc}") from exc


def _read_array(path: Path) -> npt.NDArray[np.float32]:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ModelDirectoryError(f"cannot read {path}: {exc}") from exc
    return np.ascontiguousarray(array, dtype=np.float32)


def read_model_dir(model_dir: Path) -> ModelDirectory:
    """Read and check a model directory (files present, meta complete, sizes consistent).

    >>> read_model_dir(Path("/nowhere"))
    Traceback (most recent call last):
    ...
    models.errors.ModelDirectoryError: model directory /nowhere does not exist
    """
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelDirectoryError(f"model directory {path} does not exist")
    if not has_model_file(path):
        raise ModelDirectoryError(f"{path / MODEL_FILE} is missing")
    meta = _read_json(path / META_FILE)
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise ModelDirectoryError(f"{path / META_FILE} lacks {', '.join(missing)}")
    config = _read_json(path / CONFIG_FILE)
    try:
        vocabulary = Vocabulary.load(path / VOCAB_FILE)
    except ModelsError as exc:
        raise ModelDirectoryError(str(exc)) from exc
    if len(vocabulary) != int(meta["n_items"]):
        raise ModelDirectoryError(
            f"{path}: vocab.json has {len(vocabulary)} items, meta.json says {meta['n_items']}"
        )
    metrics_path = path / METRICS_FILE
    metrics = _read_json(metrics_path) if metrics_path.is_file() else {}
    return ModelDirectory(path, meta, config, vocabulary, metrics)
