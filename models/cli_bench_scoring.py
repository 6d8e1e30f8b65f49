"""``streamrec bench-scoring --model MODEL_DIR``: the CLI of ``models.bench_scoring``.

Runtime side: needs onnxruntime, not PyTorch.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from models.cli_common import EXIT_ERROR, EXIT_OK, ensure_logging
from models.errors import ModelsError

logger = logging.getLogger(__name__)


def add_bench_scoring_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``bench-scoring`` sub-command (handler: :func:`run_bench_scoring`)."""
    p = subparsers.add_parser(
        "bench-scoring",
        help="measure ONNX scoring latency (batch 1, one thread) and throughput",
        description="Latency per user p50/p99 at batch 1 on one thread and users/s at a "
        "larger batch, on CPU (and CUDA when usable), against the model's full catalogue.",
    )
    p.add_argument("--model", type=Path, required=True, metavar="MODEL_DIR")
    p.add_argument("--calls", type=int, default=1000, help="batch-1 calls timed (default 1000)")
    p.add_argument("--batch", type=int, default=256, help="throughput batch size (default 256)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def run_bench_scoring(args: argparse.Namespace) -> int:
    """Run the benchmark described by parsed arguments; returns the process exit code."""
    from models.bench_scoring import run

    ensure_logging()
    try:
        run(args.model, calls=args.calls, batch=args.batch, as_json=args.json)
    except ModelsError as exc:
        logger.error("streamrec bench-scoring failed: %s", exc)
        return EXIT_ERROR
    return EXIT_OK
