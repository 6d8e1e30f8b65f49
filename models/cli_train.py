"""``streamrec train`` (wired in by ``streams.cli``; needs PyTorch, the ``[train]`` install).

``streamrec train --benchmark DIR --model NAME --out MODEL_DIR`` trains on a benchmark's
training sessions; ``streamrec train --events FILE --out MODEL_DIR`` on sessions built from
a JSON-lines event file. Either way the most recent ``--valid-fraction`` of the training
sessions is held out for early stopping, the best epoch is exported to ONNX (with a parity
check) into a model directory, and the *exported* model is evaluated on that validation
split; with ``--benchmark`` also on the benchmark's test file, for reporting only (nothing is
ever selected on it). Everything lands in ``MODEL_DIR/metrics.json``.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import torch

from models.cli_common import EXIT_ERROR, EXIT_OK, ensure_logging
from models.errors import InvalidInputError, ModelsError
from models.neural import ARCHITECTURES, DEFAULT_MODEL, TrainSettings, build_model

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
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--benchmark", type=Path, metavar="DIR",
                        help="benchmark directory (train_sessions.txt, test.tsv)")
    source.add_argument("--events", type=Path, metavar="FILE",
                        help="JSON-lines event file in the stream's event schema")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(ARCHITECTURES),
                   help=f"architecture (default: {DEFAULT_MODEL})")
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
    return p


def _overrides(pairs: list[str], model: str) -> dict[str, Any]:
    config_cls = ARCHITECTURES[model][0]
    known = {f.name: f for f in fields(config_cls)}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in known or key == "n_items":
            raise InvalidInputError(
                f"--set {pair!r}: expected KEY=VALUE with KEY one of "
                f"{', '.join(f for f in known if f != 'n_items')}"
            )
        default = known[key].default
        if isinstance(default, tuple):
            out[key] = tuple(int(v) for v in raw.split(",") if v)
        elif isinstance(default, bool):
            out[key] = raw.lower() in ("1", "true", "yes")
        elif isinstance(default, int | float | str):
            try:
                out[key] = type(default)(raw)
            except ValueError as exc:
                raise InvalidInputError(
                    f"--set {pair!r}: {key} takes a {type(default).__name__}"
                ) from exc
        else:  # every config field but n_items has a plain default
            raise InvalidInputError(f"--set {pair!r}: {key} cannot be set from the command line")
    return out


def run_train(args: argparse.Namespace) -> int:
    """Run the training described by parsed arguments; returns the process exit code."""
    ensure_logging()
    try:
        return _train(args)
    except ModelsError as exc:
        logger.error("streamrec train failed: %s", exc)
        return EXIT_ERROR


def _train(args: argparse.Namespace) -> int:
    from models.data import load_benchmark, load_event_sessions, split_validation
    from models.evaluation import evaluate
    from models.model_dir_writer import write_metrics, write_model_dir
    from models.neural.training import train_model
    from models.serving import OnnxRecommender

    started = time.monotonic()
    test = None
    if args.benchmark is not None:
        bench = load_benchmark(args.benchmark)
        sessions, n_items, vocabulary = bench.train_sessions, bench.n_items, bench.vocabulary
        fingerprint, source = bench.fingerprint, {"benchmark": str(args.benchmark)}
        test = (bench.test_prefixes, bench.test_targets)
    else:
        corpus = load_event_sessions(args.events)
        sessions, n_items, vocabulary = corpus.sessions, corpus.n_items, corpus.vocabulary
        fingerprint, source = corpus.fingerprint, {"events": str(args.events)}
        if args.test_fraction > 0.0:
            bench = corpus.as_benchmark(args.test_fraction)
            sessions, test = bench.train_sessions, (bench.test_prefixes, bench.test_targets)
    settings = TrainSettings(
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        valid_fraction=args.valid_fraction,
        max_minutes=args.max_minutes or None,
        seed=args.seed,
        device=args.device,
        num_threads=args.threads,
        progress=not args.no_progress,
    )
    valid = None
    train_sessions = sessions
    if settings.valid_fraction > 0.0:
        try:
            train_sessions, vp, vt = split_validation(sessions, settings.valid_fraction, args.seed)
            valid = (vp, vt) if len(vp) else None
        except InvalidInputError as exc:
            logger.warning("no validation split (%s): training for all %d epochs", exc,
                           settings.max_epochs)
            train_sessions = sessions
    if valid is None:
        settings = replace(settings, valid_fraction=0.0)
    overrides = _overrides(args.set, args.model)
    torch.manual_seed(args.seed)  # weights are initialised from the seed too
    model = build_model(args.model, n_items, **overrides)
    out_dir: Path = args.out
    result = train_model(model, train_sessions, settings, valid=valid, out_dir=out_dir)
    training = {
        **asdict(result), "settings": asdict(settings), "model": args.model,
        "train_sessions": len(train_sessions), "total_seconds_before_export": 0.0,
    }
    training["total_seconds_before_export"] = time.monotonic() - started
    model_dir = write_model_dir(
        out_dir, model.cpu(), vocabulary, training_data_fingerprint=fingerprint,
        name=args.name, extra_meta={"source": source, "training": {
            "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
            "seconds": round(result.seconds, 1), "stop_reason": result.stop_reason,
            "settings": asdict(settings)}},
    )
    recommender = OnnxRecommender(model_dir.path, device="auto", intra_op_threads=1)
    recommender.fit(train_sessions, n_items)  # binds the artifact; trains nothing
    metrics: dict[str, Any] = {"split": "validation", "training": training}
    if valid is not None:
        valid_result = evaluate(recommender, valid[0], valid[1]).to_json_dict()
        metrics.update(valid_result)
        logger.info("validation (exported model): %s", _fmt(valid_result))
    if test is not None:
        test_result = evaluate(recommender, test[0], test[1]).to_json_dict()
        metrics["test"] = test_result
        logger.info("test (reporting only): %s", _fmt(test_result))
    metrics["wall_seconds"] = time.monotonic() - started
    write_metrics(model_dir.path, metrics)
    logger.info("model directory %s written in %.0f s", model_dir.path, metrics["wall_seconds"])
    return EXIT_OK


def _fmt(metrics: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
    )

