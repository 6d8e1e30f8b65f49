"""``streamrec experiment report NAME [--json] [--control VARIANT]`` (wired in by
``streams.cli``): how each variant of experiment NAME did, read from the feedback topic
(definitions in :mod:`streams.experiments.report`).

Text output is a table for people; ``--json`` prints one JSON object on stdout:
``{"experiment", "variants": {NAME: {"users", "recommendations", "clicks", "carts",
"purchases", "revenue", "revenue_per_user", "ctr", "ctr_ci95", "conversion",
"conversion_ci95"}}, "comparisons": [{"variant", "control", "metric", "p_value"}]}``.
"""

from __future__ import annotations

import argparse
import sys

import orjson

from streams.experiments.report import read_report, render_text
from streams.settings import Settings


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``streamrec experiment report``."""
    parser.add_argument("name", metavar="NAME", help="the experiment to report on")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the table")
    parser.add_argument("--control", default=None, metavar="VARIANT",
                        help="the variant the others are compared with (default: A if there "
                        "is one, else the alphabetically first)")


def run_report(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Read the feedback topic and print the report; returns the exit code."""
    if settings is None:
        from streams.settings import load_settings

        settings = load_settings()
    report = read_report(settings, args.name, args.control)
    if args.json:
        sys.stdout.write(orjson.dumps(report.to_json_dict()).decode() + "\n")
    else:
        print(render_text(report))
    return 0
