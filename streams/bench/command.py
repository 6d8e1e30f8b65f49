"""Placeholder wiring for ``streamrec bench`` (implemented in this package)."""

from __future__ import annotations

import argparse


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true")


def run_bench(args: argparse.Namespace) -> int:
    raise NotImplementedError("streamrec bench is not implemented yet")
