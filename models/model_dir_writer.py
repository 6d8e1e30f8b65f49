"""Writing model directories (layout: ``models.model_dir``): export, vocabulary, config,
meta and metrics.

Write side: imports PyTorch and onnx through ``models.export`` (the ``[train]`` install).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.errors import ModelDirectoryError
from models.export import export_onnx
from models.model_dir import (
    CONFIG_FILE,
    META_FILE,
    METRICS_FILE,
    MODEL_FILE,
    VOCAB_FILE,
    ModelDirectory,
    read_model_dir,
)
from models.neural.base import SessionModel
from models.onnx_contract import describe
from models.vocabulary import Vocabulary

logger = logging.getLogger(__name__)


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
    """Export ``model`` (with parity check) and write a complete model directory; returns
    it as read back by ``models.model_dir.read_model_dir``."""
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
        "onnx": {**describe(), "parity": asdict(parity)},
        **(extra_meta or {}),
    }
    _write_json(out_dir / META_FILE, meta)
    write_metrics(out_dir, metrics or {})
    logger.info("wrote model directory %s (%s %s)", out_dir, meta["name"], meta["version"])
    return read_model_dir(out_dir)


def write_metrics(model_dir: Path, metrics: dict[str, Any]) -> None:
    """(Re)write ``metrics.json``."""
    _write_json(Path(model_dir) / METRICS_FILE, metrics)
