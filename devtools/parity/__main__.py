"""``python -m devtools.parity``: see :mod:`devtools.parity` and docs/parity.md.

Exit codes: 0 every live list matched its worker-equivalent offline list or the difference
has a known cause, and live and offline HR@20 / MRR@20 agree within 0.5 points on the same
cases; 1 a step failed (the message says which); 3 the run finished but parity did not hold
(an unexplained disagreement, or a figure outside the budget).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from devtools.parity.command import ParityOptions, run_parity
from streams.errors import StreamrecError

EXIT_OK, EXIT_ERROR, EXIT_PARITY = 0, 1, 3


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m devtools.parity", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True,
                   help="folder with yoochoose-clicks-*_train_full.txt and *_test.txt")
    p.add_argument("--sessions", type=int, default=1000,
                   help="test sessions replayed, from the start of the test file (0: all; "
                   "default 1000)")
    p.add_argument("--model", type=Path, default=None,
                   help="model directory to serve (default: train one on the train file)")
    p.add_argument("--epochs", type=int, default=2, help="training epochs (default 2)")
    p.add_argument("--out", type=Path, default=Path("var/parity"),
                   help="where parity.json and cases.jsonl go (default var/parity)")
    p.add_argument("--concurrency", type=int, default=200,
                   help="sessions in flight at once (default 200)")
    p.add_argument("--exclude-recent", action="store_true",
                   help="run the worker with STREAMREC_EXCLUDE_RECENT=true (the evaluation "
                   "protocol excludes nothing: shows what that exclusion costs)")
    p.add_argument("--session-gap-s", type=float, default=1800.0,
                   help="the evaluation protocol's session gap (default 1800, as "
                   "streamrec evaluate)")
    p.add_argument("--case-timeout", type=float, default=60.0,
                   help="longest wait for one recommendation, seconds (default 60)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="work directory (kept; default: a temporary one, removed)")
    p.add_argument("--keep-workdir", action="store_true")
    p.add_argument("--broker-url", default=None,
                   help="use this Kafka instead of starting the embedded broker")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = ParityOptions(
        data_dir=args.data_dir, out=args.out, sessions=args.sessions or None,
        model=args.model, epochs=args.epochs, concurrency=args.concurrency,
        exclude_recent=args.exclude_recent, gap_s=args.session_gap_s,
        case_timeout_s=args.case_timeout, workdir=args.workdir,
        keep_workdir=args.keep_workdir, broker_url=args.broker_url)
    try:
        report = run_parity(options, say=lambda line: print(line, flush=True))
    except StreamrecError as exc:
        print(f"parity: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK if report.holds else EXIT_PARITY


if __name__ == "__main__":
    sys.exit(main())
