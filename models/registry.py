"""Model directories: what ``streamrec train`` writes and the stream serves.

```
MODEL_DIR/
  model.onnx    the exported scorer (inputs/outputs described in meta.json)
  vocab.json    {"items": ["<external id of index 1>", ...]}
  config.json   the model's hyper-parameters (its frozen dataclass config)
  meta.json     name, version, created_at, architecture, n_items, max_seq_len,
                training_data_fingerprint, onnx: {inputs, outputs}, plus training details
  metrics.json  the offline evaluation it passed
```
``model.onnx`` is written last-but-metrics and only after its parity check passed, so a
directory with a ``meta.json`` always holds a scorer that agrees with its PyTorch model.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.data import Vocabulary
from models.errors import ModelsError
from models.export import export_onnx, onnx_io
from models.neural.base import SessionModel

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
VOCAB_FILE = "vocab.json"
CONFIG_FILE = "config.json"
META_FILE = "meta.json"
METRICS_FILE = "metrics.json"
REQUIRED_META = (
    "name", "version", "created_at", "architecture", "n_items", "max_seq_len",
    "training_data_fingerprint", "onnx",
)


class ModelDirectoryError(ModelsError):
    """A model directory is missing a file or holds inconsistent files.

    The message names the file. Fix: point to a directory written by ``streamrec train``
    (model.onnx, vocab.json, config.json, meta.json), or train and write it again.
    """


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


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_model_dir(
    out_dir: Path,
    model: SessionModel,
    vocabulary: Vocabulary,
    *,
    training_data_fingerprint: str,
    name: str | None = None,
    version: str | None = None,
    metrics: dict[str, Any] | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> ModelDirectory:
    """Export ``model`` (with parity check) and write a complete model directory."""
    if len(vocabulary) != model.config.n_items:
        raise ModelDirectoryError(
            f"vocabulary has {len(vocabulary)} items but the model scores {model.config.n_items}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    parity = export_onnx(model, out_dir / MODEL_FILE)
    vocabulary.save(out_dir / VOCAB_FILE)
    _write_json(out_dir / CONFIG_FILE, asdict(model.config))
    default_version = created.strftime("%Y%m%dT%H%M%SZ") + "-" + training_data_fingerprint[:8]
    meta = {
        "name": name or model.architecture,
        "version": version or default_version,
        "created_at": created.isoformat(timespec="seconds"),
        "architecture": model.architecture,
        "n_items": model.config.n_items,
        "max_seq_len": model.config.max_seq_len,
        "training_data_fingerprint": training_data_fingerprint,
        "onnx": {**onnx_io(), "opset": 17, "parity": asdict(parity)},
        **(extra_meta or {}),
    }
    _write_json(out_dir / META_FILE, meta)
    write_metrics(out_dir, metrics or {})
    logger.info("wrote model directory %s (%s %s)", out_dir, meta["name"], meta["version"])
    return read_model_dir(out_dir)


def write_metrics(model_dir: Path, metrics: dict[str, Any]) -> None:
    """(Re)write ``metrics.json``."""
    _write_json(Path(model_dir) / METRICS_FILE, metrics)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelDirectoryError(f"{path} is missing: not a streamrec model directory") from exc
    except (OSError, ValueError) as exc:
        raise ModelDirectoryError(f"cannot read {path}: {exc}") from exc


def read_model_dir(model_dir: Path) -> ModelDirectory:
    """Read and check a model directory (files present, meta complete, sizes consistent)."""
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelDirectoryError(f"model directory {path} does not exist")
    if not (path / MODEL_FILE).is_file():
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
