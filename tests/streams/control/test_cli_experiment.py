"""``streamrec experiment`` in-process against the real broker: start and stop reach every
worker, one experiment at a time, usage errors for bad variant specs, and the lazily wired
``report`` subcommand."""

from __future__ import annotations

import argparse
import re
import sys
import types
from pathlib import Path

import pytest

from schemas.control import TRENDING_VERSION, Variant
from streams.cli import build_parser
from streams.control.cli_experiment import REPORT_MODULE, parse_shadow, parse_variant
from streams.control.topic import read_control_snapshot
from streams.settings import Settings
from tests.streams.control.conftest import Cli, Follower, use_settings


@pytest.fixture
def versions(cli: Cli, model_dirs: list[Path]) -> list[str]:
    published = []
    for model_dir in model_dirs:
        code, out, err = cli("models", "publish", str(model_dir))
        assert code == 0, err
        published.append(out.split()[-1])
    return published


def test_start_and_stop_reach_every_worker(cli: Cli, versions: list[str],
                                           follower: Follower) -> None:
    a, b, c = versions
    code, out, err = cli("experiment", "start", "spring", "--variant", f"A={a}:0.5",
                         "--variant", f"B={b}:0.5", "--shadow", f"C={c}")
    assert code == 0, err
    assert "started experiment spring" in out and "control: A" in out
    seen = follower.wait(lambda s: s.running() is not None, "the experiment")
    spring = seen.running()
    assert spring is not None and spring.name == "spring" and spring.status == "running"
    assert spring.variants == (Variant("A", a, 0.5), Variant("B", b, 0.5))
    assert spring.shadow == Variant("C", c, 0.0) and spring.control.name == "A"
    assert re.fullmatch(r"[0-9a-f]{32}", spring.salt)
    assert seen.versions_needed() == {a, b, c}

    code, out, _ = cli("experiment", "stop", "spring", "--reason", "B wins")
    assert code == 0 and "stopped experiment spring" in out
    seen = follower.wait(lambda s: s.running() is None, "the stop")
    stopped = seen.experiments["spring"]  # still there: stopping is not deleting
    assert (stopped.status, stopped.reason, stopped.salt) == ("stopped", "B wins", spring.salt)
    assert stopped.updated_at_ms >= spring.updated_at_ms
    code, out, _ = cli("experiment", "stop", "spring")
    assert code == 0 and "already stopped" in out


def test_one_experiment_runs_at_a_time_and_names_are_not_reused(
    cli: Cli, settings: Settings, versions: list[str]
) -> None:
    a, b, _ = versions
    assert cli("experiment", "start", "first", "--variant", f"A={a}:1")[0] == 0
    code, _, err = cli("experiment", "start", "second", "--variant", f"A={a}:0.5",
                       "--variant", f"B={b}:0.5")
    assert code == 1
    assert "experiment 'first' is running" in err
    assert "streamrec experiment stop first" in err
    assert cli("experiment", "stop", "first")[0] == 0
    code, _, err = cli("experiment", "start", "first", "--variant", f"A={a}:1")
    assert code == 1 and "already ran (stopped)" in err
    assert cli("experiment", "start", "second", "--variant", f"A={a}:0.5",
               "--variant", f"B={TRENDING_VERSION}:0.5")[0] == 0
    snapshot = read_control_snapshot(settings)
    assert snapshot.running().name == "second"  # type: ignore[union-attr]
    assert snapshot.experiments["first"].salt != snapshot.experiments["second"].salt
    assert snapshot.versions_needed() == {a}  # trending is no model


def test_unknown_versions_and_experiments_are_operator_errors(
    cli: Cli, settings: Settings, versions: list[str]
) -> None:
    code, _, err = cli("experiment", "start", "x", "--variant", f"A={versions[0]}:0.5",
                       "--variant", "B=sessattn-0123456789ab:0.5")
    assert code == 1 and "'sessattn-0123456789ab' is not in the model registry" in err
    code, _, err = cli("experiment", "start", "x", "--variant", f"A={versions[0]}:1",
                       "--shadow", "S=nope-0123456789ab")
    assert code == 1 and "not in the model registry" in err
    code, _, err = cli("experiment", "stop", "nope")
    assert code == 1 and "no experiment named 'nope'" in err
    assert read_control_snapshot(settings).experiments == {}


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        (["A=m-1:0.5", "B=m-2:0.4"], "add up to 0.9"),
        (["A=m-1:0.5", "B=m-2:0.6"], "add up to 1.1"),
        (["A=m-1:1", "B=m-2:0"], "must be a number above 0"),
        (["A=m-1:-0.5", "B=m-2:1.5"], "must be a number above 0"),
        (["A=m-1:half"], "must be a number above 0"),
        (["A=m-1"], "expected NAME=VERSION:SHARE"),
        (["m-1:1"], "expected NAME=VERSION:SHARE"),
        (["A=m-1:0.5", "A=m-2:0.5"], "must be distinct"),
        (["-A=m-1:1"], "invalid variant name"),
        (["A=m 1:1"], "invalid version"),
    ],
)
def test_bad_variants_are_usage_errors(variants: list[str], message: str, cli: Cli) -> None:
    argv = ["experiment", "start", "x"]
    for spec in variants:
        argv += [f"--variant={spec}"]
    code, _, err = cli(*argv)
    assert code == 2, err
    assert message in err and "usage: streamrec experiment start" in err


def test_shadow_specs_and_missing_variants_are_usage_errors(cli: Cli) -> None:
    assert cli("experiment", "start", "x")[0] == 2  # --variant is required
    code, _, err = cli("experiment", "start", "x", "--variant", "A=m-1:1", "--shadow", "A=m-2")
    assert code == 2 and "must be distinct" in err
    code, _, err = cli("experiment", "start", "x", "--variant", "A=m-1:1", "--shadow",
                       "S=m-2:0.5")
    assert code == 2 and "a shadow takes no share" in err
    code, _, err = cli("experiment", "start", "bad name", "--variant", "A=m-1:1")
    assert code == 2 and "invalid experiment name" in err


def test_variant_specs_parse() -> None:
    assert parse_variant("control=trending:0.1") == Variant("control", "trending", 0.1)
    assert parse_variant("B=v:1:1") == Variant("B", "v:1", 1.0)
    assert parse_shadow("S=sessattn-0123456789ab") == Variant("S", "sessattn-0123456789ab", 0)


def test_start_needs_the_registry_but_stop_does_not(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_settings(monkeypatch, settings.model_copy(update={"model_registry": None}))
    cli = Cli(capsys)
    code, _, err = cli("experiment", "start", "x", "--variant", "A=trending:1")
    assert code == 1 and "STREAMREC_MODEL_REGISTRY is not set" in err
    code, _, err = cli("experiment", "stop", "x")
    assert code == 1 and "no experiment named 'x'" in err


# --- report: wired lazily to streams.experiments.report_cli --------------------------------

def fake_report_module(calls: list[argparse.Namespace]) -> types.ModuleType:
    module = types.ModuleType(REPORT_MODULE)

    def add_report_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true")

    def run_report(args: argparse.Namespace) -> int:
        calls.append(args)
        return 0

    module.add_report_arguments = add_report_arguments  # type: ignore[attr-defined]
    module.run_report = run_report  # type: ignore[attr-defined]
    return module


def test_report_runs_its_own_module(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[argparse.Namespace] = []
    monkeypatch.setitem(sys.modules, REPORT_MODULE, fake_report_module(calls))
    assert cli("experiment", "report", "spring", "--json")[0] == 0
    assert [(c.name, c.json) for c in calls] == [("spring", True)]


def test_a_missing_report_module_is_a_clear_error(cli: Cli,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, REPORT_MODULE, None)  # as if it were not installed
    code, out, err = cli("experiment", "report", "spring")
    assert (code, out) == (1, "")
    assert err == (f"streamrec: error: streamrec experiment report is not available in this "
                   f"installation: its module {REPORT_MODULE} is missing; reinstall streamrec "
                   f"(pip install -e . in a source checkout) so that it is complete\n")


def test_start_and_stop_do_not_import_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, REPORT_MODULE, None)
    args = build_parser("experiment", "start").parse_args(
        ["experiment", "start", "x", "--variant", "A=trending:1"])
    assert args.handler.__name__ == "run_experiment"
