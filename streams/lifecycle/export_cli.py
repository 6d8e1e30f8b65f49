"""``streamrec export-events --since DURATION --out FILE [--feedback FILE]`` (wired in by
``streams.cli``): the last DURATION of the input topics as a JSON-lines event file for
``streamrec train --events FILE`` (see :mod:`streams.lifecycle.export`).

The summary (events written, skipped by reason) goes to stderr, the output path alone to
stdout, so ``FILE=$(streamrec export-events --since 7d --out events.jsonl)`` works.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streams.lifecycle.export import InvalidDurationError, export_events, parse_duration
from streams.settings import Settings


def duration_argument(text: str) -> float:
    """argparse ``type`` for a duration (``30m``, ``24h``, ``7d``): seconds."""
    try:
        return parse_duration(text)
    except InvalidDurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_export_events_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``streamrec export-events``."""
    parser.add_argument("--since", type=duration_argument, required=True, metavar="DURATION",
                        help="how far back to export, e.g. 30m, 24h, 7d (by record time and "
                        "event time)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="the JSON-lines event file to write (replaced atomically)")
    parser.add_argument("--feedback", type=Path, default=None, metavar="FILE",
                        help="also write the attribution log of the window to FILE")


def run_export_events(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Run the export; returns the exit code (errors raise StreamrecError, which the CLI
    turns into exit code 1)."""
    if settings is None:
        from streams.settings import load_settings

        settings = load_settings()
    summary = export_events(settings, args.since, args.out, args.feedback)
    print(summary.describe(), file=sys.stderr)
    print(summary.out)
    return 0
