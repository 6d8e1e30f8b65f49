"""``streamrec blend --benchmark DIR --model MODEL_DIR``: choose and write the served blend
(``models.blend``) of an existing model directory, as ``streamrec train`` does after its
export (``models.blend_fit``), e.g. for a directory trained before blends existed or with
``--no-blend``.

The validation cases are those the directory's training used: the data's own when it has
them, else the most recent ``valid_fraction`` of the training sessions recorded in
``meta.json`` (``training.settings``), carved with the same seed. Nothing is chosen on the
test cases; when the data has them, the directory as now served is evaluated on them for
reporting (``metrics.json``'s ``test``, which ``streamrec bench-scoring`` shows). Needs
onnxruntime, numpy and scipy, not PyTorch.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from models.cli_common import EXIT_ERROR, EXIT_OK, ensure_logging
from models.errors import InvalidInputError, ModelsError

logger = logging.getLogger(__name__)


def add_blend_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``blend`` sub-command (handler: :func:`run_blend`)."""
    from models.cli_evaluate import add_data_arguments

    p = subparsers.add_parser(
        "blend", help="choose a model directory's session-kNN/repeat blend on validation",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_arguments(p)
    p.add_argument("--model", type=Path, required=True, metavar="MODEL_DIR",
                   help="model directory written by 'streamrec train' on this data")
    p.add_argument("--test-fraction", type=float, default=0.0,
                   help="--events: the --test-fraction the directory was trained with "
                   "(default 0)")
    p.add_argument("--session-gap-s", type=float, default=1800,
                   help="--events: inactivity gap (s), as for training (default 1800)")
    return p


def _settings(meta: dict[str, Any]) -> tuple[float, int]:
    settings = (meta.get("training") or {}).get("settings") or {}
    return float(settings.get("valid_fraction", 0.05)), int(settings.get("seed", 0))


def _evaluate(model_dir: Path, n_items: int, prefixes: Any, targets: Any) -> dict[str, Any]:
    from models.evaluation import evaluate
    from models.serving import OnnxRecommender

    recommender = OnnxRecommender(model_dir, device="cpu")
    recommender.fit([], n_items)  # binds the artifact; trains nothing
    result = evaluate(recommender, prefixes, targets).to_json_dict()
    logger.info("test (reporting only, exact ranking, blend included): %s", result)
    return result


def run_blend(args: argparse.Namespace) -> int:
    """Run the command described by parsed arguments; returns the process exit code."""
    from models.blend_fit import fit_blend
    from models.cli_evaluate import load_data
    from models.data import split_validation
    from models.model_dir import METRICS_FILE, read_model_dir

    ensure_logging()
    try:
        directory = read_model_dir(args.model)
        bench = load_data(args, test_fraction=args.test_fraction)
        if bench.fingerprint != directory.meta["training_data_fingerprint"]:
            raise InvalidInputError(f"{directory.path} was not trained on this data "
                                    "(training data fingerprints differ)")
        sessions = bench.train_sessions
        valid = bench.validation
        train = sessions
        if valid is None:
            fraction, seed = _settings(directory.meta)
            train, prefixes, targets = split_validation(sessions, fraction, seed)
            valid = (prefixes, targets)
        record = fit_blend(directory.path, train, sessions, valid)
        metrics = dict(directory.metrics)
        metrics["blend"] = record
        if len(bench.test_prefixes):  # reporting only: the served directory on the test
            metrics["test"] = _evaluate(directory.path, bench.n_items, bench.test_prefixes,
                                        bench.test_targets)
        (directory.path / METRICS_FILE).write_text(
            json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(json.dumps(record, indent=2, sort_keys=True))
    except ModelsError as exc:
        logger.error("streamrec blend failed: %s", exc)
        return EXIT_ERROR
    return EXIT_OK
