"""The retraining job: the split, the held-out evaluation of ONNX model directories, the
decision, and the whole flow with its side effects replaced (the registry and control topic
steps are the ``streamrec`` commands; see test_retrain_end_to_end.py for them for real)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.lifecycle.export import ExportSummary, write_json_lines
from streams.lifecycle.retrain import (
    Decision,
    RetrainError,
    RetrainOptions,
    Scores,
    Steps,
    decide,
    default_experiment_name,
    evaluate_model_dir,
    experiment_arguments,
    held_out_cases,
    retrain,
    split_events,
)
from streams.lifecycle.retrain_cli import add_retrain_arguments, options_from
from streams.settings import Settings
from tests.models.conftest import make_sessions, tiny_model_dir

HOUR = 3_600_000
NOW = 1_795_456_800_000  # 2026-11-23T18:00:00Z


def events_of(sessions: list[list[int]], start_ms: int, user: str = "u") -> list[dict[str, Any]]:
    """One view per item, a minute apart within a session, sessions an hour apart."""
    out = []
    for s, session in enumerate(sessions):
        for i, item in enumerate(session):
            out.append({"event_id": f"{user}-{start_ms}-{s}-{i}", "event_type": "view",
                        "user_id": f"{user}{s}", "item_id": str(item),
                        "timestamp": start_ms + s * HOUR + i * 60_000})
    return out


def write_events(path: Path, events: list[dict[str, Any]]) -> Path:
    write_json_lines(path, (orjson.dumps(e) for e in events))
    return path


# --------------------------------------------------------------------------- pure steps
def test_split_puts_the_newest_day_aside_and_drops_searches(tmp_path: Path) -> None:
    events = [
        {"event_id": "old", "event_type": "view", "user_id": "u", "item_id": "1",
         "timestamp": NOW - 30 * HOUR},
        {"event_id": "s", "event_type": "search", "user_id": "u",
         "properties": {"query": "x"}, "timestamp": NOW - 2 * HOUR},
        {"event_id": "edge", "event_type": "click", "user_id": "u", "item_id": "2",
         "timestamp": NOW - 24 * HOUR},
        {"event_id": "new", "event_type": "purchase", "user_id": "u", "item_id": "3",
         "timestamp": NOW - HOUR},
    ]
    split = split_events(write_events(tmp_path / "all.jsonl", events), NOW - 24 * HOUR,
                         tmp_path / "train.jsonl", tmp_path / "holdout.jsonl")
    assert (split.train_events, split.holdout_events) == (1, 2)
    train = [orjson.loads(line)["event_id"] for line in split.train.read_bytes().splitlines()]
    holdout = [orjson.loads(line)["event_id"] for line in
               split.holdout.read_bytes().splitlines()]
    assert train == ["old"] and holdout == ["edge", "new"]


def test_held_out_cases_are_every_prefix(tmp_path: Path) -> None:
    path = write_events(tmp_path / "h.jsonl", events_of([[1, 2, 3], [4], [5, 6]], NOW))
    cases = held_out_cases(path)
    assert [list(p) for p in cases.test_prefixes] == [[1], [1, 2], [5]]  # [4] has no next
    assert cases.vocabulary.items == ("1", "2", "3", "4", "5", "6")
    assert held_out_cases(write_events(tmp_path / "one.jsonl", events_of([[1]], NOW))) is None


def test_a_model_dir_is_scored_on_the_held_out_day(tmp_path: Path) -> None:
    sessions = make_sessions(n_sessions=30, seed=3)
    cases = held_out_cases(write_events(tmp_path / "h.jsonl", events_of(sessions, NOW)))
    scores = evaluate_model_dir(tiny_model_dir(), cases)
    assert scores.cases == sum(len(s) - 1 for s in sessions if len(s) > 1)
    assert 0.0 <= scores.mrr <= scores.hr <= 1.0
    assert scores.hr > 0.0, "the tiny model learnt the runs of consecutive items"
    assert evaluate_model_dir(tiny_model_dir(), cases) == scores, "deterministic"


def test_items_a_model_never_saw_are_misses(tmp_path: Path) -> None:
    # more than 20 of them: a target scoring -inf ties with every other unknown item and the
    # pessimistic rank puts it last (in a day of 20 items or fewer, last is still in the top 20)
    unknown = [list(range(101 + 5 * s, 106 + 5 * s)) for s in range(6)]
    cases = held_out_cases(write_events(tmp_path / "h.jsonl", events_of(unknown, NOW)))
    scores = evaluate_model_dir(tiny_model_dir(), cases)
    assert (scores.hr, scores.mrr, scores.cases) == (0.0, 0.0, 24)


@pytest.mark.parametrize(("candidate", "promoted", "tolerance", "publish"), [
    (0.10, 0.10, 0.0, True),
    (0.11, 0.10, 0.0, True),
    (0.09, 0.10, 0.0, False),
    (0.09, 0.10, 0.02, True),
    (0.07, 0.10, 0.02, False),
])
def test_the_candidate_goes_on_when_not_worse(candidate: float, promoted: float,
                                              tolerance: float, publish: bool) -> None:
    decision = decide(Scores(0.5, candidate, 100), Scores(0.5, promoted, 100), tolerance)
    assert decision.publish is publish
    assert f"{candidate:.4f}" in decision.reason and f"{promoted:.4f}" in decision.reason


def test_nothing_promoted_means_nothing_to_lose() -> None:
    assert decide(None, None, 0.0) == Decision(True, "nothing to compare with")
    assert decide(Scores(0, 0, 1), None, 0.0).publish


def test_experiment_arguments_and_name() -> None:
    assert experiment_arguments("n", "shadow", "a-1", "b-2") == [
        "experiment", "start", "n", "--variant", "A=a-1:1.0", "--shadow", "C=b-2"]
    assert experiment_arguments("n", "ab", "a-1", "b-2") == [
        "experiment", "start", "n", "--variant", "A=a-1:0.5", "--variant", "B=b-2:0.5"]
    with pytest.raises(RetrainError, match="--mode"):
        experiment_arguments("n", "canary", "a", "b")
    assert default_experiment_name(NOW) == "retrain-20261123T180000Z"


def test_command_line_options() -> None:
    parser = argparse.ArgumentParser()
    add_retrain_arguments(parser)
    options = options_from(parser.parse_args([]))
    assert options == RetrainOptions()
    options = options_from(parser.parse_args([
        "--since", "3d", "--holdout", "12h", "--mode", "ab", "--tolerance", "0.01",
        "--train-args", "--epochs 2 --set 'dim=16'", "--experiment", "x", "--work-dir", "w"]))
    assert options == RetrainOptions(3 * 86400.0, 12 * 3600.0, "ab", 0.01,
                                     ("--epochs", "2", "--set", "dim=16"), "x", Path("w"))
    with pytest.raises(SystemExit):
        parser.parse_args(["--mode", "canary"])


# --------------------------------------------------------------------------- the whole job
class FakeSteps:
    """The job's side effects, recorded: an export of prepared events, a training that
    copies nothing, scores chosen per model, and ``streamrec`` commands that succeed."""

    def __init__(self, tmp: Path, *, promoted: str | None, running: Any = None,
                 candidate_mrr: float = 0.2, promoted_mrr: float = 0.1,
                 failing: str | None = None, events: list[dict[str, Any]] | None = None
                 ) -> None:
        self.source = write_events(tmp / "source.jsonl", events if events is not None else (
            events_of([[1, 2, 3]] * 5, NOW - 72 * HOUR) + events_of([[1, 2]] * 3, NOW - 5 * HOUR,
                                                                   user="w")))
        self.promoted_version, self.running = promoted, running
        self.mrr = {"candidate": candidate_mrr, "promoted": promoted_mrr}
        self.failing = failing
        self.commands: list[list[str]] = []
        self.said: list[str] = []
        self.trained: list[tuple[Path, Path, Sequence[str]]] = []

    def export(self, settings: Settings, since_s: float, out: Path, now_ms: int | None = None
               ) -> ExportSummary:
        out.write_bytes(self.source.read_bytes())
        return ExportSummary(out=out, since_ms=NOW - int(since_s * 1000), until_ms=NOW,
                             events_written=21, skipped={}, duplicates=0, outside_window=0)

    def train(self, train_file: Path, out_dir: Path, extra: Sequence[str]) -> None:
        self.trained.append((train_file, out_dir, extra))

    def cli(self, argv: Sequence[str]) -> tuple[int, str]:
        self.commands.append(list(argv))
        if self.failing and argv[0] == self.failing:
            return 1, ""
        if list(argv[:2]) == ["models", "publish"]:
            return 0, f"published {argv[2]} (sessattn) to /registry as sessattn-0123456789ab\n"
        return 0, "ok\n"

    def promoted(self, settings: Settings) -> tuple[str | None, Any]:
        return self.promoted_version, self.running

    def model_path(self, settings: Settings, version: str) -> Path:
        return Path("/registry") / version

    def evaluate(self, model_dir: Path, cases: Any) -> Scores:
        which = "promoted" if str(model_dir).startswith("/registry") else "candidate"
        return Scores(0.5, self.mrr[which], len(cases.test_prefixes))

    def steps(self) -> Steps:
        return Steps(export=self.export, train=self.train, cli=self.cli,
                     promoted=self.promoted, model_path=self.model_path,
                     evaluate=self.evaluate, say=self.said.append)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(model_registry=tmp_path / "registry")


def run(settings: Settings, fake: FakeSteps, **options: Any) -> int:
    return retrain(settings, RetrainOptions(experiment="retrain-x", **options), fake.steps(),
                   now_ms=NOW)


def test_a_better_candidate_is_published_and_shadowed(settings: Settings, tmp_path: Path
                                                      ) -> None:
    fake = FakeSteps(tmp_path, promoted="sessattn-aaaaaaaaaaaa")
    assert run(settings, fake, train_args=("--epochs", "1"), work_dir=tmp_path / "w") == 0
    (train_file, out_dir, extra), = fake.trained
    assert extra == ("--epochs", "1") and out_dir == tmp_path / "w" / "candidate"
    assert len(train_file.read_bytes().splitlines()) == 15  # the 3-day-old sessions only
    assert fake.commands == [
        ["models", "publish", str(out_dir)],
        ["experiment", "start", "retrain-x", "--variant", "A=sessattn-aaaaaaaaaaaa:1.0",
         "--shadow", "C=sessattn-0123456789ab"]]
    text = "\n".join(fake.said)
    assert "candidate: hr@20 0.5000, mrr@20 0.2000 on 3 cases" in text
    assert "promoted sessattn-aaaaaaaaaaaa: hr@20 0.5000, mrr@20 0.1000" in text
    assert fake.said[-1].startswith("published sessattn-0123456789ab and started shadow")


def test_ab_mode_splits_users(settings: Settings, tmp_path: Path) -> None:
    fake = FakeSteps(tmp_path, promoted="sessattn-aaaaaaaaaaaa")
    assert run(settings, fake, mode="ab") == 0
    assert fake.commands[-1][3:] == ["--variant", "A=sessattn-aaaaaaaaaaaa:0.5",
                                     "--variant", "B=sessattn-0123456789ab:0.5"]


def test_a_worse_candidate_keeps_the_promoted_model(settings: Settings, tmp_path: Path,
                                                    ) -> None:
    fake = FakeSteps(tmp_path, promoted="sessattn-aaaaaaaaaaaa", candidate_mrr=0.05)
    assert run(settings, fake) == 0
    assert fake.commands == []
    assert fake.said[-1] == (
        "kept the promoted model sessattn-aaaaaaaaaaaa: the candidate's mrr@20 0.0500 is "
        "below the promoted model's 0.1000 - tolerance 0")
    assert run(settings, fake, tolerance=0.06) == 0
    assert fake.commands[0][:2] == ["models", "publish"]


def test_with_nothing_promoted_the_candidate_is_promoted(settings: Settings, tmp_path: Path
                                                         ) -> None:
    fake = FakeSteps(tmp_path, promoted=None)
    assert run(settings, fake) == 0
    assert [c[:2] for c in fake.commands] == [["models", "publish"], ["models", "promote"]]
    assert fake.commands[1][2] == "sessattn-0123456789ab"


def test_against_trending_the_candidate_is_tried_in_an_experiment(settings: Settings,
                                                                  tmp_path: Path) -> None:
    fake = FakeSteps(tmp_path, promoted="trending")
    assert run(settings, fake) == 0
    assert fake.commands[-1][3:5] == ["--variant", "A=trending:1.0"]


class Running:
    def __init__(self, name: str, shadow: bool) -> None:
        self.name, self.variants = name, ("A",) if shadow else ("A", "B")
        self.shadow = "C" if shadow else None


def test_an_earlier_retrain_shadow_is_superseded(settings: Settings, tmp_path: Path) -> None:
    fake = FakeSteps(tmp_path, promoted="m-1", running=Running("retrain-old", shadow=True))
    assert run(settings, fake) == 0
    assert fake.commands[1][:3] == ["experiment", "stop", "retrain-old"]
    assert fake.commands[2][:3] == ["experiment", "start", "retrain-x"]


def test_another_running_experiment_is_left_alone(settings: Settings, tmp_path: Path) -> None:
    fake = FakeSteps(tmp_path, promoted="m-1", running=Running("spring-sale", shadow=False))
    with pytest.raises(RetrainError, match="experiment 'spring-sale' is running") as caught:
        run(settings, fake)
    assert "streamrec experiment start retrain-x" in str(caught.value)
    assert [c[:2] for c in fake.commands] == [["models", "publish"]]


def test_a_failed_command_fails_the_job(settings: Settings, tmp_path: Path) -> None:
    fake = FakeSteps(tmp_path, promoted="m-1", failing="experiment")
    with pytest.raises(RetrainError, match="starting the experiment failed"):
        run(settings, fake)


def test_no_training_events_fails_before_training(settings: Settings, tmp_path: Path) -> None:
    fake = FakeSteps(tmp_path, promoted="m-1", events=events_of([[1, 2]], NOW - HOUR))
    with pytest.raises(RetrainError, match="no events to train on"):
        run(settings, fake)
    assert fake.trained == []


def test_no_held_out_case_cannot_beat_a_promoted_model(settings: Settings, tmp_path: Path
                                                       ) -> None:
    only_old = events_of([[1, 2, 3]] * 5, NOW - 72 * HOUR)
    with pytest.raises(RetrainError, match="hold no session of two or more items"):
        run(settings, FakeSteps(tmp_path, promoted="m-1", events=only_old))
    fake = FakeSteps(tmp_path, promoted=None, events=only_old)
    assert run(settings, fake) == 0  # nothing promoted: nothing to compare with
    assert [c[1] for c in fake.commands] == ["publish", "promote"]


def test_the_registry_must_be_configured(tmp_path: Path) -> None:
    fake = FakeSteps(tmp_path, promoted=None)
    with pytest.raises(RetrainError, match="STREAMREC_MODEL_REGISTRY"):
        run(Settings(), fake)
    assert fake.trained == []


@pytest.mark.parametrize(("options", "message"), [
    ({"holdout_s": 8 * 86400.0}, "--holdout must be shorter"),
    ({"mode": "canary"}, "--mode"),
])
def test_bad_options_fail_before_anything_runs(settings: Settings, tmp_path: Path,
                                               options: dict[str, Any], message: str) -> None:
    fake = FakeSteps(tmp_path, promoted=None)
    with pytest.raises(RetrainError, match=message):
        run(settings, fake, **options)
    assert fake.trained == [] and fake.commands == []
