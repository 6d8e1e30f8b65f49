"""``streamrec train`` (wired in by ``streams.cli``; needs PyTorch, the ``[train]`` install).

``streamrec train --benchmark DIR --model NAME --out MODEL_DIR`` trains on a benchmark's
training sessions (``--data-dir`` is the same option; Diginetica-format or RecBole
directories, see ``models.data``); ``streamrec train --events FILE --out MODEL_DIR`` on
sessions built from a JSON-lines event file. Early stopping reads the data's own validation
cases when it has them (Amazon leave-one-out), else the most recent ``--valid-fraction`` of
the training sessions, held out. The best epoch is exported to ONNX (with a parity check)
into a model directory, and the *exported* model is evaluated on the validation cases; with
a test split also on it, for reporting only (nothing is ever selected on it). Everything
lands in ``MODEL_DIR/metrics.json``.

``--model sessattn_text`` (or ``--text``) also reads the item texts, embedded once by the
text encoder and cached (``--text-cache``); data without text (Diginetica, event files)
trains it as exactly SessAttn. ``--protocol cold-items --cold-seed S`` trains on the data
with the hidden items removed, for ``streamrec evaluate --protocol cold-items --cold-seed S``.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models.cli_common import EXIT_ERROR, EXIT_OK, ensure_logging, parse_overrides
from models.cli_evaluate import add_data_arguments
from models.data import (
    COLD_ITEMS,
    Benchmark,
    cold_item_split,
    load_benchmark,
    load_event_sessions,
    split_validation,
)
from models.errors import InvalidInputError, ModelsError
from models.neural import (
    ARCHITECTURES,
    DEFAULT_MODEL,
    TEXT_ARCHITECTURES,
    TrainSettings,
    build_model,
)
from models.text.asset import DEFAULT_MODEL_PATH
from models.text.item_vectors import DEFAULT_CACHE_DIR, item_vectors

TEXT_MODEL = "sessattn_text"
"""What ``--text`` trains."""

logger = logging.getLogger(__name__)

DEFAULT_MAX_MINUTES = 38.0
"""Training-loop budget of a default run: with loading, export and evaluation the whole
``streamrec train`` on Diginetica stays within 45 minutes on 2 CPU cores."""


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    defaults = TrainSettings()
    p = subparsers.add_parser(
        "train",
        help="train a neural session model and write a servable model directory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_arguments(p)
    p.add_argument("--model", default=None, choices=sorted(ARCHITECTURES),
                   help=f"architecture (default: {DEFAULT_MODEL}; with --text: {TEXT_MODEL})")
    p.add_argument("--text", action="store_true",
                   help=f"use item text: the text-aware model ({TEXT_MODEL})")
    p.add_argument("--text-cache", type=Path, default=DEFAULT_CACHE_DIR, metavar="DIR",
                   help=f"cache of item text vectors (default {DEFAULT_CACHE_DIR})")
    p.add_argument("--text-model", type=Path, default=DEFAULT_MODEL_PATH, metavar="FILE",
                   help="text encoder file, used when the vectors are not cached "
                   f"(default {DEFAULT_MODEL_PATH})")
    p.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR",
                   help="model directory to write (created if missing)")
    p.add_argument("--name", help="model name in meta.json (default: the architecture)")
    p.add_argument("--epochs", type=int, default=defaults.max_epochs,
                   help=f"maximum epochs (default {defaults.max_epochs})")
    p.add_argument("--max-minutes", type=float, default=DEFAULT_MAX_MINUTES,
                   help=f"training-loop wall-clock budget (default {DEFAULT_MAX_MINUTES}; "
                   "0 = unlimited)")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size,
                   help=f"sessions per step (default {defaults.batch_size})")
    p.add_argument("--lr", type=float, default=defaults.lr,
                   help=f"initial learning rate (default {defaults.lr})")
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay,
                   help=f"decoupled (AdamW) weight decay (default {defaults.weight_decay})")
    p.add_argument("--patience", type=int, default=defaults.patience,
                   help="stop after this many epochs without a better validation score "
                   f"(default {defaults.patience})")
    p.add_argument("--valid-fraction", type=float, default=defaults.valid_fraction,
                   help="most recent training sessions held out for validation "
                   f"(default {defaults.valid_fraction})")
    p.add_argument("--test-fraction", type=float, default=0.0,
                   help="--events only: also hold out this most recent fraction of sessions "
                   "as a test split reported in metrics.json (default 0: none)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default 0)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="training device (default auto: CUDA when available)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model config field, e.g. --set dim=64 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-blend", action="store_true",
                   help="serve the neural model alone: do not choose a blend with the "
                   "session-kNN and repeat terms on the validation cases (models.blend)")
    return p


def _overrides(pairs: list[str], model: str) -> dict[str, Any]:
    return parse_overrides(pairs, ARCHITECTURES[model][0])


def _architecture(args: argparse.Namespace) -> str:
    if args.text and args.model not in (None, *TEXT_ARCHITECTURES):
        raise InvalidInputError(
            f"--text trains a text-aware model ({', '.join(TEXT_ARCHITECTURES)}), not "
            f"{args.model}"
        )
    return str(args.model or (TEXT_MODEL if args.text else DEFAULT_MODEL))


def run_train(args: argparse.Namespace) -> int:
    """Run the training described by parsed arguments; returns the process exit code."""
    ensure_logging()
    try:
        return _train(args)
    except ModelsError as exc:
        logger.error("streamrec train failed: %s", exc)
        return EXIT_ERROR


def _load(args: argparse.Namespace) -> tuple[Benchmark, dict[str, str], bool]:
    """``(data, source, has_test)`` of the parsed data arguments, under ``--protocol``."""
    if args.benchmark is not None:
        bench, has_test = load_benchmark(args.benchmark), True
        source = {"benchmark": str(args.benchmark)}
    else:
        corpus = load_event_sessions(args.events)
        source = {"events": str(args.events)}
        has_test = args.test_fraction > 0.0
        if has_test:
            bench = corpus.as_benchmark(args.test_fraction)
        else:
            bench = Benchmark(corpus.sessions, [], np.zeros(0, dtype=np.int64), corpus.n_items,
                              corpus.fingerprint, item_ids=corpus.vocabulary.items)
    if args.protocol == COLD_ITEMS:
        bench = cold_item_split(bench, args.cold_seed, args.cold_fraction)
        source["protocol"] = bench.protocol
    return bench, source, has_test


def _text_vectors(
    args: argparse.Namespace, architecture: str, bench: Benchmark
) -> npt.NDArray[np.float32] | None:
    """The item text table a text-aware architecture reads, or None."""
    if architecture not in TEXT_ARCHITECTURES:
        return None
    if bench.item_texts is None or not any(bench.item_texts):
        logger.warning("%s: this data has no item text, so the model is exactly SessAttn "
                       "(the text branch contributes nothing)", architecture)
        return None
    return item_vectors(bench.item_texts, cache_dir=args.text_cache,
                        encoder_path=args.text_model)


def _train(args: argparse.Namespace) -> int:
    from models.evaluation import evaluate
    from models.model_dir_writer import write_metrics, write_model_dir
    from models.neural.training import train_model
    from models.serving import OnnxRecommender

    started = time.monotonic()
    architecture = _architecture(args)
    bench, source, has_test = _load(args)
    sessions, n_items, vocabulary = bench.train_sessions, bench.n_items, bench.vocabulary
    test = (bench.test_prefixes, bench.test_targets) if has_test else None
    settings = TrainSettings(
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        valid_fraction=args.valid_fraction,
        patience=args.patience,
        weight_decay=args.weight_decay,
        max_minutes=args.max_minutes or None,
        seed=args.seed,
        device=args.device,
        num_threads=args.threads,
        progress=not args.no_progress,
    )
    valid = bench.validation
    train_sessions = sessions
    if valid is not None:
        logger.info("early stopping on the data's %d validation cases", len(valid[0]))
    elif settings.valid_fraction > 0.0:
        try:
            train_sessions, vp, vt = split_validation(sessions, settings.valid_fraction, args.seed)
            valid = (vp, vt) if len(vp) else None
        except InvalidInputError as exc:
            logger.warning("no validation split (%s): training for all %d epochs", exc,
                           settings.max_epochs)
            train_sessions = sessions
    if valid is None:
        settings = replace(settings, valid_fraction=0.0)
    overrides = _overrides(args.set, architecture)
    vectors = _text_vectors(args, architecture, bench)
    torch.manual_seed(args.seed)  # weights are initialised from the seed too
    model = build_model(architecture, n_items, **overrides)
    if vectors is not None:
        model.attach_text(vectors)  # type: ignore[operator]
    out_dir: Path = args.out
    result = train_model(model, train_sessions, settings, valid=valid, out_dir=out_dir)
    training = {
        **asdict(result), "settings": asdict(settings), "model": architecture,
        "train_sessions": len(train_sessions), "text": vectors is not None,
        "total_seconds_before_export": time.monotonic() - started,
    }
    model_dir = write_model_dir(
        out_dir, model.cpu(), vocabulary, training_data_fingerprint=bench.fingerprint,
        name=args.name, extra_meta={"source": source, "training": {
            "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
            "seconds": round(result.seconds, 1), "stop_reason": result.stop_reason,
            "settings": asdict(settings), "item_text": vectors is not None}},
    )
    recommender = OnnxRecommender(model_dir.path, device="auto", intra_op_threads=1)
    recommender.fit(train_sessions, n_items)  # binds the artifact; trains nothing
    metrics: dict[str, Any] = {"split": "validation", "training": training,
                               "protocol": bench.protocol}
    if valid is not None:
        valid_result = evaluate(recommender, valid[0], valid[1]).to_json_dict()
        metrics.update(valid_result)
        logger.info("validation (exported model): %s", _fmt(valid_result))
        if not args.no_blend:
            metrics["blend"] = _blend(model_dir.path, train_sessions, sessions, valid)
            recommender = OnnxRecommender(model_dir.path, device="auto", intra_op_threads=1)
            recommender.fit(train_sessions, n_items)
    if test is not None:
        test_result = evaluate(recommender, test[0], test[1]).to_json_dict()
        metrics["test"] = test_result
        logger.info("test (reporting only): %s", _fmt(test_result))
    metrics["wall_seconds"] = time.monotonic() - started
    write_metrics(model_dir.path, metrics)
    logger.info("model directory %s written in %.0f s", model_dir.path, metrics["wall_seconds"])
    return EXIT_OK


def _blend(
    model_dir: Path, train_sessions: list[list[int]], sessions: list[list[int]],
    valid: tuple[Any, npt.NDArray[np.int64]],
) -> dict[str, Any]:
    """Choose the served blend on the validation cases (``models.blend_fit``): the
    neighbourhood is fitted without the validation sessions to choose, then on every
    training session to serve. The validation figures above stay the neural model's alone
    (the served tables hold the validation sessions); the blend's are in ``blend``."""
    from models.blend_fit import fit_blend

    record = fit_blend(model_dir, train_sessions, sessions, valid)
    logger.info("blend weights %s: validation %s", record["weights"] or "none (neural alone)",
                record["validation"])
    return record


def _fmt(metrics: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
    )

