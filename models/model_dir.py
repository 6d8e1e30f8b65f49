"""Reading model directories: what ``streamrec train`` writes and the stream serves.

```
MODEL_DIR/
  model.onnx    the exported scorer (see models.onnx_contract; described in meta.json)
  vocab.json    {"items": ["<external id of index 1>", ...]}
  config.json   the model's hyper-parameters (its frozen dataclass config)
  meta.json     name, version, created_at, architecture, n_items, max_seq_len,
                training_data_fingerprint, onnx: {inputs, outputs, opset, parity},
                plus training details
  metrics.json  the offline evaluation it passed
```
``model.onnx`` is written last-but-metrics and only after its parity check passed, so a
directory with a ``meta.json`` always holds a scorer that agrees with its PyTorch model.
This is the read side (json, numpy and the standard library only); writing lives in
``models.model_dir_writer``, which needs PyTorch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import ModelDirectoryError, ModelsError
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
