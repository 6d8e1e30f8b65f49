"""``streamrec evaluate``: offline full-ranking evaluation of a baseline or a trained model.

    streamrec evaluate --benchmark ../shared/data/diginetica --model iknn
    streamrec evaluate --data-dir ../shared/data/amazon_scientific --model textknn
    streamrec evaluate --data-dir DIR --model MODEL_DIR --protocol cold-items --cold-seed 0
    streamrec evaluate --events events.jsonl --model MODEL_DIR --json
    streamrec evaluate --benchmark ../shared/data/diginetica --model MODEL_DIR --retrieval ann

``--benchmark`` (alias ``--data-dir``) reads a Diginetica-format directory or a RecBole
leave-one-out directory with item text (``amazon_scientific/``). ``--split valid`` evaluates
on the validation cases instead of the test cases (the data's own, or carved from the most
recent training sessions): select models there, never on the test split.

``--protocol cold-items`` hides a seeded random ``--cold-fraction`` of the items from
training and evaluates only the cases whose target is hidden (``models.data.cold_items``):
a model that knows items only by id scores about 0 there by construction. A model directory
evaluated under it must have been trained under the same protocol and seed.

``--retrieval ann`` (model directories with the retrieval pair) evaluates the lists the
stream serves through the item index: only the ``--candidates`` items the index retrieves
per case are ranked (by their exact scores); a target it does not retrieve is a miss.
``--retrieval exact`` (the default) ranks every item; the difference is what the index
costs in accuracy (``models.evaluation``, "Approximate retrieval").

``--json`` prints exactly one JSON object (``hr@10 hr@20 mrr@10 mrr@20 ndcg@10 ndcg@20
coverage@20 cases``, plus ``protocol``, ``hidden_items`` and ``note`` under the cold-item
protocol, and ``retrieval``, ``candidates``, ``ef_search`` with ``--retrieval ann``) on
stdout; otherwise a table. Diagnostics go to the log (stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from models.cli_common import EXIT_ERROR, EXIT_OK, ensure_logging
from models.data import (
    COLD_ITEMS,
    STANDARD,
    Benchmark,
    cold_item_split,
    hidden_items,
    load_benchmark,
    load_event_sessions,
)
from models.data.cold_items import DEFAULT_FRACTION
from models.errors import ModelsError
from models.evaluation import Retrieval, evaluate_model_on, model_names, render_table

log = logging.getLogger(__name__)

__all__ = [
    "EXIT_ERROR", "EXIT_OK", "add_data_arguments", "add_evaluate_parser", "load_data",
    "run_evaluate",
]

COLD_NOTE = (
    "cold-item protocol: only cases whose target was hidden from training; a model that "
    "knows items only by id never saw these items and scores ~0 by construction"
)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--benchmark/--data-dir`` or ``--events``, and the protocol options (shared with
    ``streamrec train``)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--benchmark", "--data-dir", dest="benchmark", type=Path, metavar="DIR",
        help="benchmark directory: Diginetica format (train_sessions.txt, test.tsv) or "
        "RecBole leave-one-out with item text (NAME.train.inter, NAME.text, ...)",
    )
    source.add_argument(
        "--events", type=Path, metavar="FILE",
        help="JSON-lines event file in the stream's event schema, split by time",
    )
    parser.add_argument(
        "--protocol", choices=(STANDARD, COLD_ITEMS), default=STANDARD,
        help="cold-items: hide a random share of items from training, evaluate only cases "
        "whose target is hidden (default: standard)",
    )
    parser.add_argument("--cold-seed", type=int, default=0,
                        help="cold-items: seed of the hidden items (default 0)")
    parser.add_argument("--cold-fraction", type=float, default=DEFAULT_FRACTION,
                        help=f"cold-items: share of items hidden (default {DEFAULT_FRACTION})")


def load_data(args: argparse.Namespace, test_fraction: float, validation: bool = False) -> (
    Benchmark
):
    """The benchmark the parsed data arguments describe: loaded, with its validation cases
    as test cases when ``validation``, then under ``--protocol``."""
    if args.benchmark is not None:
        benchmark = load_benchmark(args.benchmark)
    else:
        corpus = load_event_sessions(args.events, session_gap_s=args.session_gap_s)
        benchmark = corpus.as_benchmark(test_fraction=test_fraction)
    if validation:
        benchmark = benchmark.validation_view()
    if args.protocol == COLD_ITEMS:
        benchmark = cold_item_split(benchmark, args.cold_seed, args.cold_fraction)
    return benchmark


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
    add_data_arguments(parser)
    parser.add_argument(
        "--model",
        required=True,
        help=f"a baseline ({'|'.join(model_names())}) or a trained model directory",
    )
    parser.add_argument("--split", choices=("test", "valid"), default="test",
                        help="evaluate on the test cases (default) or the validation cases")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a baseline's config field, e.g. --set k=50 (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--diversity-lambda", type=float, nargs="+", metavar="L",
        help="also re-rank the model's lists as the worker does (models/rerank_eval.py): "
        "maximal marginal relevance over item text with each L, reporting HR@20, NDCG@10, "
        "intra-list diversity and category coverage (needs item texts)")
    parser.add_argument(
        "--simulate-search", action="store_true",
        help="with --diversity-lambda: also with a search simulated before each case from "
        "the target's category (the worker's search gain, weight 2)")
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
    parser.add_argument(
        "--retrieval", default="exact", choices=("exact", "ann"),
        help="model dirs only: rank every item (exact, default) or only what the served item "
        "index retrieves (ann; a target it misses is a miss)")
    parser.add_argument("--candidates", type=int, default=None,
                        help="--retrieval ann: items retrieved per case (default: serving's)")
    parser.add_argument("--ef-search", type=int, default=None,
                        help="--retrieval ann: HNSW search breadth (default: = candidates)")
    parser.set_defaults(handler=run_evaluate)
    return parser


def run_evaluate(args: argparse.Namespace) -> int:
    """Run the evaluation described by parsed arguments; returns the process exit code."""
    ensure_logging()  # stderr; stdout carries only the result
    if args.diversity_lambda:
        return _run_rerank(args)
    try:
        benchmark = load_data(args, args.test_fraction, validation=args.split == "valid")
        retrieval = _retrieval(args)
        result = evaluate_model_on(
            benchmark, args.model, batch_size=args.batch_size, device=args.device,
            overrides=args.set, retrieval=retrieval,
        )
    except ModelsError as exc:
        log.error("evaluate failed: %s", exc)
        return EXIT_ERROR
    log.info("evaluated %d %s cases in %.1fs", result.cases, args.split, result.wall_s)
    cold = args.protocol == COLD_ITEMS
    n_hidden = 0
    if cold:
        n_hidden = len(hidden_items(benchmark.n_items, args.cold_seed, args.cold_fraction))
        log.info("%s; %d of %d items hidden", COLD_NOTE, n_hidden, benchmark.n_items)
    if args.json:
        payload: dict[str, Any] = result.to_json_dict()
        if cold:
            payload.update(protocol=benchmark.protocol, hidden_items=n_hidden, note=COLD_NOTE)
        if retrieval.mode == "ann":
            payload.update(retrieval=retrieval.mode, candidates=retrieval.candidates,
                           ef_search=retrieval.ef_search)
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        name = args.model if args.model in model_names() else Path(args.model).name
        sys.stdout.write(render_table({name: result}) + "\n")
        if cold:
            sys.stdout.write(f"{benchmark.protocol}: {n_hidden} of {benchmark.n_items} items "
                             f"hidden. {COLD_NOTE}.\n")
    return EXIT_OK


def _retrieval(args: argparse.Namespace) -> Retrieval:
    """The parsed ``--retrieval`` options; ``--candidates``/``--ef-search`` need ``ann``."""
    if args.retrieval != "ann":
        if args.candidates is not None or args.ef_search is not None:
            raise ModelsError("--candidates and --ef-search apply to --retrieval ann")
        return Retrieval()
    if args.candidates is None:
        from models.retrieval import DEFAULT_CANDIDATES  # faiss: only when needed

        return Retrieval("ann", DEFAULT_CANDIDATES, args.ef_search)
    return Retrieval("ann", args.candidates, args.ef_search)


def _run_rerank(args: argparse.Namespace) -> int:
    from models.rerank_eval import rerank_table

    try:
        benchmark = load_data(args, args.test_fraction, validation=args.split == "valid")
        if not benchmark.item_texts:
            raise ModelsError("--diversity-lambda needs a benchmark with item texts "
                              "(e.g. ../shared/data/amazon_scientific)")
        rows = rerank_table(benchmark, args.model, args.diversity_lambda,
                            search=args.simulate_search, device=args.device,
                            batch_size=args.batch_size)
    except ModelsError as exc:
        log.error("evaluate failed: %s", exc)
        return EXIT_ERROR
    if args.json:
        print(json.dumps({"model": args.model, "rows": rows}))
        return EXIT_OK
    print("| search | lambda | HR@20 | NDCG@10 | diversity | coverage | cases |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {'yes' if row['search'] else 'no'} | {row['lambda']:g} | {row['hr@20']:.4f} "
              f"| {row['ndcg@10']:.4f} | {row['diversity']:.4f} | {row['coverage']:.4f} "
              f"| {row['cases']} |")
    return EXIT_OK
