"""``streamrec retrain`` (wired in by ``streams.cli``): the scheduled retraining job's one
command, export -> train -> compare on the newest held-out day -> publish and start a shadow
or A/B experiment (see :mod:`streams.lifecycle.retrain`).

```
streamrec retrain [--since 7d] [--holdout 24h] [--mode shadow|ab] [--tolerance 0.0]
                  [--train-args="--epochs 5 --model sessattn"] [--experiment NAME]
                  [--work-dir DIR]
```
Exit codes: 0 when the candidate was published (and promoted or put in an experiment), 0
too when it was worse and the promoted model was kept (both figures printed); 1 when a step
failed (the message says which, and what to check).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from streams.lifecycle.export_cli import duration_argument
from streams.lifecycle.retrain import MODES, RetrainOptions, retrain
from streams.settings import Settings


def add_retrain_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``streamrec retrain``."""
    parser.add_argument("--since", type=duration_argument, default=7 * 86_400.0,
                        metavar="DURATION",
                        help="events to export and learn from, e.g. 7d (default 7d)")
    parser.add_argument("--holdout", type=duration_argument, default=86_400.0,
                        metavar="DURATION",
                        help="the newest part of the window held out to compare the "
                        "candidate with the promoted model (default 24h)")
    parser.add_argument("--mode", choices=MODES, default="shadow",
                        help="shadow: the candidate is scored beside the promoted model and "
                        "never shown; ab: half the users get it (default shadow)")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="publish when the candidate's MRR@20 >= the promoted model's "
                        "minus this (default 0.0)")
    parser.add_argument("--train-args", default="", metavar="ARGS",
                        help="more options for 'streamrec train', one shell-quoted string; "
                        "write it with '=': --train-args=\"--epochs 5 --model sessattn\"")
    parser.add_argument("--experiment", default=None, metavar="NAME",
                        help="the experiment's name (default retrain-<UTC time>)")
    parser.add_argument("--work-dir", type=Path, default=None, metavar="DIR",
                        help="keep the export, the split and the candidate here (default: a "
                        "temporary directory, removed afterwards)")


def options_from(args: argparse.Namespace) -> RetrainOptions:
    """The job's options from parsed arguments."""
    return RetrainOptions(since_s=args.since, holdout_s=args.holdout, mode=args.mode,
                          tolerance=args.tolerance,
                          train_args=tuple(shlex.split(args.train_args)),
                          experiment=args.experiment, work_dir=args.work_dir)


def run_retrain(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Run the job; returns the exit code (a failure raises a StreamrecError, which the CLI
    turns into exit code 1 with its message)."""
    if settings is None:
        from streams.settings import load_settings

        settings = load_settings()
    return retrain(settings, options_from(args))
