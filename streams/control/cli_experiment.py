"""``streamrec experiment``: start and stop A/B experiments on the control topic, and report
on them.

```
streamrec experiment start NAME --variant A=VERSION:0.5 --variant B=VERSION:0.5 [--shadow C=VERSION]
streamrec experiment stop NAME [--reason TEXT]
streamrec experiment report NAME [--json]
```
The first ``--variant`` is the control. ``VERSION`` is a published registry version or
``trending`` (no model: the trending baseline). Shares are above 0 and add up to 1 (within
1e-6); a wrong spec is a usage error (exit 2). A shadow is scored for the same users but
never sent. Each experiment gets a fresh random salt, so a user keeps one variant for the
whole experiment and the split of one experiment says nothing about the next.

Only one experiment runs at a time: ``start`` refuses while another is running (the message
names it; stop it first), and refuses a name used before, since a name identifies an
experiment's results in the feedback log for good. ``stop`` writes the experiment again with
status ``stopped`` (not a tombstone), so its record stays on the topic. ``start`` needs
``STREAMREC_MODEL_REGISTRY`` (the versions must be published); ``stop`` and ``report`` do not.

``report`` is implemented in :mod:`streams.experiments.report_cli`, imported only when it
runs. Nothing here imports PyTorch.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import secrets
from collections.abc import Callable
from typing import Final

from schemas.control import (
    SHARE_TOLERANCE,
    Experiment,
    ExperimentStatus,
    Variant,
    is_valid_label,
)
from streams.clock import now_ms
from streams.control import ExperimentConflictError, UnknownExperimentError
from streams.control.cli_models import check_version, registry_of
from streams.control.topic import publish_control, read_control_snapshot
from streams.settings import load_settings

REPORT_MODULE: Final = "streams.experiments.report_cli"
SALT_BYTES: Final = 16
"""Random bytes in a salt (32 hex digits)."""


def add_experiment_arguments(parser: argparse.ArgumentParser,
                             subcommand: str | None = None) -> None:
    """The ``experiment`` subcommands on ``parser``. ``report``'s own arguments come from
    its module, imported only when ``subcommand`` is ``report``."""
    sub = parser.add_subparsers(dest="experiment_command", required=True)
    start = sub.add_parser(
        "start", help="start an A/B experiment (one runs at a time)",
        description="Split users between variants; the first --variant is the control.")
    start.add_argument("name", type=_label("experiment name"), metavar="NAME")
    start.add_argument(
        "--variant", dest="variants", action="append", required=True, type=parse_variant,
        metavar="NAME=VERSION:SHARE",
        help="a variant: its label, a registry version or 'trending', and its share of users "
             "(above 0); repeat it, the shares adding up to 1; the first is the control")
    start.add_argument("--shadow", type=parse_shadow, metavar="NAME=VERSION",
                       help="a variant scored for the same users but never sent")
    start.set_defaults(usage_error=start.error)
    stop = sub.add_parser("stop", help="stop a running experiment (its record stays)")
    stop.add_argument("name", metavar="NAME")
    stop.add_argument("--reason", default="stopped by an operator",
                      help="why it stopped, kept in its record (default: %(default)s)")
    report = sub.add_parser("report", help="an experiment's results per variant")
    if subcommand == "report":
        from streams.cli import import_command_module

        module = import_command_module(REPORT_MODULE, "experiment report")
        module.add_report_arguments(report)
        report.set_defaults(report_handler=module.run_report)


def run_experiment(args: argparse.Namespace) -> int:
    """Run the ``experiment`` subcommand ``args`` names."""
    if args.experiment_command == "report":
        return int(args.report_handler(args))
    commands: dict[str, Callable[[argparse.Namespace], int]] = {"start": _start, "stop": _stop}
    return commands[args.experiment_command](args)


def parse_variant(text: str) -> Variant:
    """``NAME=VERSION:SHARE`` as a :class:`~schemas.control.Variant` (argparse type).

    >>> parse_variant("B=sessattn-0123456789ab:0.25")
    Variant(name='B', version='sessattn-0123456789ab', share=0.25)
    """
    name, equals, rest = text.partition("=")
    version, colon, share_text = rest.rpartition(":")
    if not equals or not colon:
        raise argparse.ArgumentTypeError(
            f"expected NAME=VERSION:SHARE (e.g. B=sessattn-0123456789ab:0.5), got {text!r}")
    try:
        share = float(share_text)
    except ValueError:
        share = math.nan
    if not 0 < share <= 1:
        raise argparse.ArgumentTypeError(
            f"the share of {text!r} must be a number above 0 and at most 1")
    return Variant(_label("variant name")(name), _label("version")(version), share)


def parse_shadow(text: str) -> Variant:
    """``NAME=VERSION`` as a shadow :class:`~schemas.control.Variant` (share 0)."""
    name, equals, version = text.partition("=")
    if not equals:
        raise argparse.ArgumentTypeError(
            f"expected NAME=VERSION (e.g. C=sessattn-0123456789ab), got {text!r}")
    if _is_number(version.rpartition(":")[2]) and ":" in version:
        raise argparse.ArgumentTypeError(f"a shadow takes no share (it is sent to nobody): "
                                         f"use NAME=VERSION, not {text!r}")
    return Variant(_label("shadow name")(name), _label("version")(version), 0.0)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label(what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not is_valid_label(text):
            raise argparse.ArgumentTypeError(
                f"invalid {what} {text!r}: 1 to 128 letters, digits, '.', '_', ':' or '-', "
                f"starting with a letter or digit")
        return text

    return check


def _start(args: argparse.Namespace) -> int:
    variants: tuple[Variant, ...] = tuple(args.variants)
    arms = [*variants, *((args.shadow,) if args.shadow else ())]
    names = [arm.name for arm in arms]
    if len(set(names)) != len(names):
        args.usage_error(f"variant names must be distinct (the shadow's too): {names}")
    total = math.fsum(variant.share for variant in variants)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        args.usage_error(f"the variants' shares add up to {total:.6g}; they must add up to 1")
    settings = load_settings()
    registry = registry_of(settings)
    for arm in arms:
        check_version(registry, arm.version)
    snapshot = read_control_snapshot(settings)
    running = snapshot.running()
    if running is not None:
        raise ExperimentConflictError(
            f"experiment {running.name!r} is running; only one experiment runs at a time: "
            f"stop it first with 'streamrec experiment stop {running.name}'")
    if args.name in snapshot.experiments:
        earlier = snapshot.experiments[args.name]
        raise ExperimentConflictError(
            f"an experiment named {args.name!r} already ran ({earlier.status}); a name "
            f"identifies an experiment's results for good: choose another name")
    now = now_ms()
    experiment = Experiment(name=args.name, salt=secrets.token_hex(SALT_BYTES),
                            variants=variants, shadow=args.shadow,
                            status=ExperimentStatus.RUNNING.value, started_at_ms=now,
                            updated_at_ms=now)
    publish_control(settings, experiment)
    split = ", ".join(f"{v.name}={v.version} ({v.share:.0%})" for v in variants)
    shadow = f"; shadow {args.shadow.name}={args.shadow.version}" if args.shadow else ""
    print(f"started experiment {args.name}: {split}{shadow} (control: {variants[0].name})")
    return 0


def _stop(args: argparse.Namespace) -> int:
    settings = load_settings()
    snapshot = read_control_snapshot(settings)
    experiment = snapshot.experiments.get(args.name)
    if experiment is None:
        known = ", ".join(sorted(snapshot.experiments)) or "none"
        raise UnknownExperimentError(
            f"no experiment named {args.name!r} on the control topic "
            f"{settings.topic_control!r} (known: {known})")
    if not experiment.is_running:
        print(f"experiment {args.name} is already {experiment.status}")
        return 0
    publish_control(settings, dataclasses.replace(
        experiment, status=ExperimentStatus.STOPPED.value, updated_at_ms=now_ms(),
        reason=args.reason))
    print(f"stopped experiment {args.name}")
    return 0
