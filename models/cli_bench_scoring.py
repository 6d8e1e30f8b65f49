"""``streamrec bench-scoring --model MODEL_DIR``: the CLI of ``models.bench_scoring``.

Runtime side: needs onnxruntime and faiss, not PyTorch.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from models.cli_common import EXIT_ERROR, EXIT_OK, ensure_logging
from models.errors import InvalidInputError, ModelsError

logger = logging.getLogger(__name__)

MODES = ("exact", "ann")


def add_bench_scoring_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``bench-scoring`` sub-command (handler: :func:`run_bench_scoring`)."""
    p = subparsers.add_parser(
        "bench-scoring",
        help="measure ONNX scoring latency (batch 1, one thread), throughput and CPU per user",
        description="Latency per user p50/p99 at batch 1 on one thread, users/s at a larger "
        "batch and CPU ms per scored user, ranking the full catalogue (exact) and through "
        "the item index (ann), on CPU (and CUDA when usable).",
    )
    p.add_argument("--model", type=Path, required=True, metavar="MODEL_DIR")
    p.add_argument("--also", type=Path, action="append", default=[], metavar="MODEL_DIR",
                   help="bench this model directory too, in the same table (repeatable): "
                   "accuracy (P@20, MRR@20 on the test cases, from its metrics.json) per "
                   "latency, to pick a model")
    p.add_argument("--calls", type=int, default=1000, help="batch-1 calls timed (default 1000)")
    p.add_argument("--batch", type=int, default=256, help="throughput batch size (default 256)")
    p.add_argument("--batch-calls", type=int, default=20,
                   help="throughput calls timed (default 20)")
    p.add_argument("--retrieval", default=None, metavar="MODES",
                   help="comma-separated ranking modes among exact,ann (default: both when "
                   "the model directory has the retrieval pair, else exact)")
    p.add_argument("--candidates", type=int, default=None,
                   help="ann: items retrieved per user (default: serving's)")
    p.add_argument("--ef-search", type=int, default=None,
                   help="ann: HNSW search breadth (default: = candidates)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="auto: CPU, and CUDA when usable (default); cpu; cuda (error if unusable)")
    p.add_argument("--benchmark", type=Path, default=None, metavar="DIR",
                   help="draw the histories from this benchmark's test prefixes (default: "
                   "random item sequences)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def _modes(raw: str | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    modes = tuple(m.strip() for m in raw.split(",") if m.strip())
    if not modes or any(m not in MODES for m in modes):
        raise InvalidInputError(f"--retrieval takes a comma-separated list of {MODES}, "
                                f"got {raw!r}")
    return modes


def run_bench_scoring(args: argparse.Namespace) -> int:
    """Run the benchmark described by parsed arguments; returns the process exit code."""
    from models.bench_scoring import run
    from models.retrieval import DEFAULT_CANDIDATES

    ensure_logging()
    try:
        candidates = DEFAULT_CANDIDATES if args.candidates is None else args.candidates
        run(args.model, calls=args.calls, batch=args.batch, as_json=args.json,
            retrieval=_modes(args.retrieval), device=args.device, candidates=candidates,
            ef_search=args.ef_search, batch_calls=args.batch_calls,
            benchmark_dir=args.benchmark, also=args.also)
    except ModelsError as exc:
        logger.error("streamrec bench-scoring failed: %s", exc)
        return EXIT_ERROR
    return EXIT_OK
