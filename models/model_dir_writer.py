"""Writing model directories (layout: ``models.model_dir``): export (the scores graph and
the retrieval pair beside it: encoder graph and item vectors), vocabulary, config, meta and
metrics.

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
from models.export import export_encoder, export_onnx
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
from models.onnx_contract import describe, describe_encoder
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
    """Export ``model`` (with parity checks: the scores graph against PyTorch, the encoder
    and item vectors against the scores graph) and write a complete model directory;
    returns it as read back by ``models.model_dir.read_model_dir``."""
    if len(vocabulary) != model.config.n_items:
        raise ModelDirectoryError(
            f"vocabulary has {len(vocabulary)} items but the model scores {model.config.n_items}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    parity = export_onnx(model, out_dir / MODEL_FILE)
    encoder = _encoder_meta(model, out_dir)
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
        "onnx": {
            **describe(), "parity": asdict(parity),
            "encoder": encoder,
        },
        **(extra_meta or {}),
    }
    _write_json(out_dir / META_FILE, meta)
    write_metrics(out_dir, metrics or {})
    logger.info("wrote model directory %s (%s %s)", out_dir, meta["name"], meta["version"])
    return read_model_dir(out_dir)


def _encoder_meta(model: SessionModel, out_dir: Path) -> dict[str, Any]:
    """Export the retrieval pair into ``out_dir`` (checked against its ``model.onnx``);
    returns the ``onnx.encoder`` section of ``meta.json``."""
    encoder = export_encoder(model, out_dir, out_dir / MODEL_FILE)
    return {**describe_encoder(encoder.dim, encoder.has_bias), "parity": asdict(encoder.parity)}


def add_encoder(model_dir: Path, model: SessionModel) -> ModelDirectory:
    """Give an existing model directory (exported before the retrieval pair existed) its
    encoder and item vectors, from the PyTorch model it was exported from (e.g. its
    ``checkpoints/best.pt``); the parity check against the directory's own ``model.onnx``
    refuses any other model. Rewrites ``meta.json``'s ``onnx.encoder`` only."""
    directory = read_model_dir(Path(model_dir))
    if directory.n_items != model.config.n_items:
        raise ModelDirectoryError(f"{directory.path} scores {directory.n_items} items, the "
                                  f"model {model.config.n_items}")
    meta = dict(directory.meta)
    meta["onnx"] = {**meta["onnx"], "encoder": _encoder_meta(model, directory.path)}
    _write_json(directory.path / META_FILE, meta)
    logger.info("added the retrieval pair to %s", directory.path)
    return read_model_dir(directory.path)


def write_metrics(model_dir: Path, metrics: dict[str, Any]) -> None:
    """(Re)write ``metrics.json``."""
    _write_json(Path(model_dir) / METRICS_FILE, metrics)
