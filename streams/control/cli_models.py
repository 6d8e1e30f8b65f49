"""``streamrec models``: publish model directories to the registry, list the versions, and
promote one (or roll back to the one before) on the control topic.

```
streamrec models publish MODEL_DIR   copy a 'streamrec train' directory into the registry;
                                     its version is the last word on stdout
streamrec models list [--json]       versions, oldest first, and which one is promoted
streamrec models promote VERSION     serve VERSION on every worker (or 'trending': no model)
streamrec models rollback            serve the version promoted before the current one
```
Every subcommand needs ``STREAMREC_MODEL_REGISTRY``; promote, rollback and list also reach
the broker (list still lists when it cannot, and says the promotion is unknown). Promoting
writes a :class:`~schemas.control.Promotion` whose history is the previous version followed
by the previous history (at most 20), so ``rollback`` can walk back one step at a time.
Nothing here imports PyTorch.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from models.registry import ModelRegistry, VersionInfo
from schemas.control import MAX_HISTORY, TRENDING_VERSION, Promotion
from schemas.timestamps import format_rfc3339_ms
from streams.clock import now_ms
from streams.control import ControlTopicError, NoPreviousVersionError, RegistryNotConfiguredError
from streams.control.topic import ControlSnapshot, publish_control, read_control_snapshot
from streams.settings import Settings, load_settings

log = logging.getLogger(__name__)

LIST_TIMEOUT_S: Final = 5.0
"""How long ``models list`` waits for the control topic before listing without it."""


def add_models_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``models`` subcommands on ``parser``."""
    sub = parser.add_subparsers(dest="models_command", required=True)
    publish = sub.add_parser(
        "publish", help="copy a model directory into the registry; prints its version last")
    publish.add_argument("model_dir", type=Path, metavar="MODEL_DIR",
                         help="a directory written by 'streamrec train'")
    listing = sub.add_parser("list", help="the registry's versions and which one is promoted")
    listing.add_argument("--json", action="store_true",
                         help='one JSON array of {"version", "name", "published_at", '
                              '"promoted"} (promoted: null when the broker did not answer)')
    promote = sub.add_parser("promote", help="serve VERSION on every worker")
    promote.add_argument("version", metavar="VERSION",
                         help=f"a published version, or {TRENDING_VERSION!r} (no model)")
    sub.add_parser("rollback", help="serve the version promoted before the current one")


def run_models(args: argparse.Namespace) -> int:
    """Run the ``models`` subcommand ``args`` names."""
    commands: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "publish": _publish, "list": _list, "promote": _promote, "rollback": _rollback}
    return commands[args.models_command](args, load_settings())


def registry_of(settings: Settings) -> ModelRegistry:
    """The configured registry; :class:`RegistryNotConfiguredError` when there is none."""
    if settings.model_registry is None:
        raise RegistryNotConfiguredError(
            "STREAMREC_MODEL_REGISTRY is not set: set it to the model registry directory the "
            "workers share (e.g. STREAMREC_MODEL_REGISTRY=/var/lib/streamrec/registry)")
    return ModelRegistry(settings.model_registry)


def check_version(registry: ModelRegistry, version: str) -> None:
    """Raise :class:`~models.registry.UnknownVersionError` unless ``version`` is published
    (or is ``trending``)."""
    if version != TRENDING_VERSION:
        registry.path_of(version)


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    registry = registry_of(settings)
    root = registry.root
    before = {path.name for path in root.iterdir()} if root.is_dir() else set()
    info = registry.publish(args.model_dir)
    if info.version in before:
        print(f"{args.model_dir} is already published as {info.version}")
    else:
        print(f"published {args.model_dir} ({info.name}) to {registry.root} as {info.version}")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    registry = registry_of(settings)
    versions = registry.versions()
    snapshot: ControlSnapshot | None
    try:
        snapshot = read_control_snapshot(settings, timeout_s=LIST_TIMEOUT_S)
        unknown = None
    except ControlTopicError as exc:
        snapshot, unknown = None, str(exc)
    promoted = None if snapshot is None or snapshot.promotion is None else (
        snapshot.promotion.version)
    if args.json:
        print(json.dumps([_json_row(info, snapshot, promoted) for info in versions]))
    else:
        _print_table(registry, versions, snapshot, promoted)
    if unknown is not None:  # with --json, stdout holds the JSON array only
        print(f"promotion unknown: {unknown}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _json_row(info: VersionInfo, snapshot: ControlSnapshot | None, promoted: str | None
              ) -> dict[str, Any]:
    return {"version": info.version, "name": info.name,
            "published_at": format_rfc3339_ms(info.published_at_ms),
            "promoted": None if snapshot is None else info.version == promoted}


def _print_table(registry: ModelRegistry, versions: list[VersionInfo],
                 snapshot: ControlSnapshot | None, promoted: str | None) -> None:
    if not versions:
        print(f"no versions in the model registry {registry.root}; publish one with "
              f"'streamrec models publish MODEL_DIR'")
    else:
        rows = [("VERSION", "NAME", "PUBLISHED", "SERVING")]
        rows += [(info.version, info.name, format_rfc3339_ms(info.published_at_ms),
                  _serving(info.version, snapshot, promoted)) for info in versions]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        for row in rows:
            print("  ".join(row[column].ljust(widths[column]) for column in range(3))
                  + "  " + row[3])
    if promoted == TRENDING_VERSION:
        print("promoted: trending (no model; the trending baseline serves)")
    elif snapshot is not None and promoted is None:
        print("promoted: nothing yet ('streamrec models promote VERSION')")


def _serving(version: str, snapshot: ControlSnapshot | None, promoted: str | None) -> str:
    if snapshot is None:
        return "?"
    roles = ["promoted"] if version == promoted else []
    experiment = snapshot.running()
    if experiment is not None:
        arms = [*experiment.variants, *((experiment.shadow,) if experiment.shadow else ())]
        roles += [f"experiment {experiment.name} variant {arm.name}" + (
            " (shadow)" if arm is experiment.shadow else "")
            for arm in arms if arm.version == version]
    return ", ".join(roles)


def _promote(args: argparse.Namespace, settings: Settings) -> int:
    registry = registry_of(settings)
    check_version(registry, args.version)
    current = read_control_snapshot(settings).promotion
    if current is not None and current.version == args.version:
        print(f"{args.version} is already promoted")
        return 0
    history = (current.version, *current.history) if current is not None else ()
    publish_control(settings, Promotion(args.version, history[:MAX_HISTORY], now_ms(),
                                        "promote"))
    was = current.version if current is not None else "nothing"
    print(f"promoted {args.version} (was {was}); every worker switches once it has loaded it")
    return 0


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    registry = registry_of(settings)
    current = read_control_snapshot(settings).promotion
    if current is None:
        raise NoPreviousVersionError(
            "nothing is promoted, so there is nothing to roll back; promote a version with "
            "'streamrec models promote VERSION' ('streamrec models list' shows them)")
    if not current.history:
        raise NoPreviousVersionError(
            f"{current.version} is promoted and no version was promoted before it, so there "
            f"is nothing to roll back to; promote one with 'streamrec models promote VERSION'")
    target = current.history[0]
    check_version(registry, target)
    publish_control(settings, Promotion(target, current.history[1:], now_ms(), "rollback"))
    print(f"rolled back from {current.version} to {target}")
    return 0
