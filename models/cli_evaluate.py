"""``streamrec evaluate``: offline full-ranking evaluation of a baseline or a trained model.

    streamrec evaluate --benchmark ../shared/data/diginetica --model iknn
    streamrec evaluate --events events.jsonl --model MODEL_DIR --json

``--json`` prints exactly one JSON object (``hr@10 hr@20 mrr@10 mrr@20 ndcg@10 ndcg@20
coverage@20 cases``) on stdout; otherwise a table. Diagnostics go to the log (stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from models.baselines import BASELINES
from models.cli_common import EXIT_ERROR, EXIT_OK, ensure_logging
from models.data import load_event_sessions
from models.errors import ModelsError
from models.evaluation import evaluate_benchmark, evaluate_model_on, render_table

log = logging.getLogger(__name__)

__all__ = ["EXIT_ERROR", "EXIT_OK", "add_evaluate_parser", "run_evaluate"]


def add_evaluate_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register the ``evaluate`` sub-command; its handler is ``args.handler`` (run_evaluate)."""
    parser = subparsers.add_parser(
        "evaluate",
        help="offline full-ranking evaluation (HR/MRR/NDCG@10,20, coverage@20)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--benchmark", type=Path, help="directory with train_sessions.txt and test.tsv"
    )
    source.add_argument(
        "--events", type=Path, help="JSON-lines event file, split by time into train/test"
    )
    parser.add_argument(
        "--model",
        required=True,
        help=f"a baseline ({'|'.join(BASELINES)}) or a trained model directory",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--batch-size", type=int, default=256, help="rows scored at once")
    parser.add_argument(
        "--test-fraction", type=float, default=0.1, help="--events: last sessions as test"
    )
    parser.add_argument(
        "--session-gap-s", type=float, default=1800, help="--events: inactivity gap (s)"
    )
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="model dirs only"
    )
    parser.set_defaults(handler=run_evaluate)
    return parser


def run_evaluate(args: argparse.Namespace) -> int:
    """Run the evaluation described by parsed arguments; returns the process exit code."""
    ensure_logging()  # stderr; stdout carries only the result
    try:
        if args.benchmark is not None:
            result = evaluate_benchmark(
                args.benchmark, args.model, batch_size=args.batch_size, device=args.device
            )
        else:
            corpus = load_event_sessions(args.events, session_gap_s=args.session_gap_s)
            benchmark = corpus.as_benchmark(test_fraction=args.test_fraction)
            result = evaluate_model_on(
                benchmark, args.model, batch_size=args.batch_size, device=args.device
            )
    except ModelsError as exc:
        log.error("evaluate failed: %s", exc)
        return EXIT_ERROR
    log.info("evaluated %d cases in %.1fs", result.cases, result.wall_s)
    if args.json:
        sys.stdout.write(json.dumps(result.to_json_dict()) + "\n")
    else:
        name = Path(args.model).name if args.model not in BASELINES else args.model
        sys.stdout.write(render_table({name: result}) + "\n")
    return EXIT_OK
