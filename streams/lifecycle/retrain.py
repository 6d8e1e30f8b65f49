"""The scheduled retraining job (``streamrec retrain``): export, train, compare, publish.

1. **export** the last ``--since`` (default 7 days) of the input topics
   (:func:`streams.lifecycle.export.export_events`);
2. **split** it by event time: the last ``--holdout`` (default 24 h) of the window is the
   held-out day, everything before it the training file (searches name no item and are left
   out of both);
3. **train** a candidate on the training file: ``streamrec train --events FILE --out DIR`` in
   a subprocess of the same interpreter (PyTorch stays out of this process), with
   ``--train-args`` passed through;
4. **evaluate** the candidate and the promoted model on the held-out day's next-item cases
   (HR@20 and MRR@20, full ranking, ONNX Runtime on CPU: :mod:`models.evaluation`). Each
   model sees the day's items through its own vocabulary: an item it never saw is a miss;
5. **decide**: the candidate goes on only when it is not worse, MRR@20 >= the promoted
   model's - ``--tolerance`` (default 0); otherwise the promoted model stays and the job
   prints both figures (exit 0);
6. **publish** it to the registry (``streamrec models publish``) and start an experiment
   (``--mode shadow``: ``A`` = promoted at 100 %, shadow ``C`` = candidate; ``--mode ab``:
   ``A`` = promoted, ``B`` = candidate, 50/50) named ``--experiment`` (default
   ``retrain-<UTC time>``). When nothing is promoted yet (or ``trending`` is), there is
   nothing to compare with: the candidate is published and promoted (nothing promoted) or
   put in the experiment against ``trending``.

Only one experiment runs at a time: a running shadow experiment that an earlier retrain
started is stopped first (a newer candidate supersedes it); any other running experiment is
left alone, the candidate is published and the job fails (exit 1) saying how to start the
experiment once the other one ends.

The registry and control-topic steps go through the ``streamrec`` commands in-process
(:func:`streams.cli.main`), so they behave exactly as an operator's; :class:`Steps` lets the
tests replace them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from streams.errors import StreamrecError
from streams.lifecycle.export import ExportSummary, export_events, write_json_lines
from streams.settings import Settings

log = logging.getLogger(__name__)

K: Final = 20
"""The cut-off of the held-out metrics (HR@20, MRR@20)."""
EXPERIMENT_PREFIX: Final = "retrain-"
"""Experiments this job starts are named ``retrain-<UTC time>`` by default."""
TRENDING: Final = "trending"
"""The control topic's version for "no model" (:data:`schemas.control.TRENDING_VERSION`)."""
MODES: Final = ("shadow", "ab")


class RetrainError(StreamrecError):
    """The retraining job failed at the step the message names (export, training, held-out
    evaluation, publishing or the experiment); it says what to check. Nothing was promoted
    or started unless the message says so; the job can simply run again."""


@dataclass(frozen=True)
class RetrainOptions:
    """What ``streamrec retrain`` was asked to do (see the module docstring)."""

    since_s: float = 7 * 86_400.0
    holdout_s: float = 86_400.0
    mode: str = "shadow"
    tolerance: float = 0.0
    train_args: tuple[str, ...] = ()
    experiment: str | None = None
    work_dir: Path | None = None


@dataclass(frozen=True)
class Scores:
    """A model's held-out figures."""

    hr: float  # HR@20
    mrr: float  # MRR@20
    cases: int

    def describe(self) -> str:
        return f"hr@{K} {self.hr:.4f}, mrr@{K} {self.mrr:.4f} on {self.cases} cases"


@dataclass(frozen=True)
class Decision:
    """Whether the candidate goes on, and why (for the log and stdout)."""

    publish: bool
    reason: str


@dataclass(frozen=True)
class Split:
    """Where the export was split and how many events went each way."""

    train: Path
    holdout: Path
    cut_ms: int
    train_events: int
    holdout_events: int


# --------------------------------------------------------------------------- pure steps
def split_events(events_file: Path, cut_ms: int, train_out: Path, holdout_out: Path) -> Split:
    """Events of ``events_file`` (an export) before ``cut_ms`` to ``train_out``, the rest to
    ``holdout_out``, in file order; searches (no ``item_id``) to neither."""
    train: list[bytes] = []
    holdout: list[bytes] = []
    with Path(events_file).open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            event = orjson.loads(line)
            if not isinstance(event, dict) or "item_id" not in event:
                continue
            (train if int(event["timestamp"]) < cut_ms else holdout).append(line.rstrip(b"\n"))
    return Split(train_out, holdout_out, cut_ms, write_json_lines(train_out, train),
                 write_json_lines(holdout_out, holdout))


def held_out_cases(holdout_file: Path) -> Any:
    """The held-out day as a benchmark of next-item cases (every prefix of every session);
    None when it has no case."""
    from models.data import Benchmark, expand_prefixes, load_event_sessions

    corpus = load_event_sessions(holdout_file)
    prefixes, targets = expand_prefixes(corpus.sessions)
    if not prefixes:
        return None
    # An ONNX model directory's fit() trains nothing (it binds the model to the data's items),
    # so the day's own sessions are handed over as the "training" sessions.
    return Benchmark(train_sessions=corpus.sessions, test_prefixes=prefixes,
                     test_targets=targets,
                     n_items=corpus.n_items, fingerprint=corpus.fingerprint,
                     item_ids=corpus.vocabulary.items)


def evaluate_model_dir(model_dir: Path, cases: Any) -> Scores:
    """HR@20 and MRR@20 of an ONNX model directory on held-out cases (ONNX Runtime, CPU)."""
    from models.evaluation import evaluate_model_on

    result = evaluate_model_on(cases, str(Path(model_dir).resolve()), k_values=(K,),
                               device="cpu")
    return Scores(hr=result[f"hr@{K}"], mrr=result[f"mrr@{K}"], cases=result.cases)


def decide(candidate: Scores | None, promoted: Scores | None, tolerance: float) -> Decision:
    """Publish the candidate when it is not worse than the promoted model: its MRR@20 is at
    least the promoted model's minus ``tolerance``. With no promoted figures there is nothing
    to lose.

    >>> decide(Scores(0.3, 0.10, 50), Scores(0.3, 0.12, 50), 0.0).publish
    False
    >>> decide(Scores(0.3, 0.10, 50), Scores(0.3, 0.12, 50), 0.05).publish
    True
    """
    if promoted is None:
        return Decision(True, "nothing to compare with")
    if candidate is None:
        return Decision(False, "the candidate could not be evaluated")
    floor = promoted.mrr - tolerance
    if candidate.mrr >= floor:
        return Decision(True, f"the candidate's mrr@{K} {candidate.mrr:.4f} is at least the "
                              f"promoted model's {promoted.mrr:.4f} - tolerance {tolerance:g}")
    return Decision(False, f"the candidate's mrr@{K} {candidate.mrr:.4f} is below the "
                           f"promoted model's {promoted.mrr:.4f} - tolerance {tolerance:g}")


def experiment_arguments(name: str, mode: str, promoted: str, candidate: str) -> list[str]:
    """``streamrec experiment start`` arguments for the mode.

    >>> experiment_arguments("retrain-1", "shadow", "m-1", "m-2")
    ['experiment', 'start', 'retrain-1', '--variant', 'A=m-1:1.0', '--shadow', 'C=m-2']
    >>> experiment_arguments("retrain-1", "ab", "m-1", "m-2")[3:]
    ['--variant', 'A=m-1:0.5', '--variant', 'B=m-2:0.5']
    """
    if mode == "shadow":
        return ["experiment", "start", name, "--variant", f"A={promoted}:1.0",
                "--shadow", f"C={candidate}"]
    if mode == "ab":
        return ["experiment", "start", name, "--variant", f"A={promoted}:0.5",
                "--variant", f"B={candidate}:0.5"]
    raise RetrainError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")


def default_experiment_name(now_ms: int) -> str:
    """``retrain-20261123T180000Z`` for the job's start time.

    >>> default_experiment_name(1_795_456_800_000)
    'retrain-20261123T180000Z'
    """
    return EXPERIMENT_PREFIX + datetime.fromtimestamp(now_ms / 1000, UTC).strftime(
        "%Y%m%dT%H%M%SZ")


# --------------------------------------------------------------------------- side effects
def run_cli(argv: Sequence[str]) -> tuple[int, str]:
    """``streamrec ARGV`` in this process: (exit code, what it printed on stdout). The
    output is echoed to this process's stdout too."""
    from streams.cli import main

    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            code = main(list(argv))
    except SystemExit as exc:  # a usage error
        code = exc.code if isinstance(exc.code, int) else 2
    text = captured.getvalue()
    sys.stdout.write(text)
    return code, text


def train_candidate(train_file: Path, out_dir: Path, extra: Sequence[str]) -> None:
    """``streamrec train --events FILE --out DIR`` in a subprocess of this interpreter."""
    command = [sys.executable, "-m", "streams.cli", "train", "--events", str(train_file),
               "--out", str(out_dir), "--no-progress", *extra]
    log.info("training: %s", " ".join(command))
    try:
        done = subprocess.run(command, check=False)
    except OSError as exc:
        raise RetrainError(f"cannot run {command[0]}: {exc}") from exc
    if done.returncode != 0:
        raise RetrainError(
            f"training failed (streamrec train exited {done.returncode}; its log is above). "
            "Training needs the [train] extra (PyTorch): run the job in the training image")


def read_promoted(settings: Settings) -> tuple[str | None, Any]:
    """``(promoted version or None, the running experiment or None)`` from the control
    topic."""
    from streams.control.topic import read_control_snapshot

    snapshot = read_control_snapshot(settings)
    promotion = snapshot.promotion
    return (None if promotion is None else str(promotion.version)), snapshot.running()


def registry_path(settings: Settings, version: str) -> Path:
    """Where the registry keeps ``version``."""
    from models.registry import ModelRegistry

    if settings.model_registry is None:
        raise RetrainError("retrain publishes to the model registry: set "
                           "STREAMREC_MODEL_REGISTRY to the registry directory the workers "
                           "share")
    return Path(ModelRegistry(settings.model_registry).path_of(version))


@dataclass
class Steps:
    """The job's side effects, replaceable in tests."""

    export: Callable[..., ExportSummary] = export_events
    train: Callable[[Path, Path, Sequence[str]], None] = train_candidate
    cli: Callable[[Sequence[str]], tuple[int, str]] = run_cli
    promoted: Callable[[Settings], tuple[str | None, Any]] = read_promoted
    model_path: Callable[[Settings, str], Path] = registry_path
    evaluate: Callable[[Path, Any], Scores] = evaluate_model_dir
    say: Callable[[str], None] = field(default=print)


# --------------------------------------------------------------------------- the job
def retrain(settings: Settings, options: RetrainOptions, steps: Steps | None = None,
            now_ms: int | None = None) -> int:
    """Run the whole job; returns the exit code (0: published, or kept the promoted model;
    a failure raises :class:`RetrainError` or another StreamrecError)."""
    steps = steps or Steps()
    if options.mode not in MODES:
        raise RetrainError(f"--mode must be one of {', '.join(MODES)}, got {options.mode!r}")
    if not 0 < options.holdout_s < options.since_s:
        raise RetrainError("--holdout must be shorter than --since: the held-out day is the "
                           "end of the exported window")
    if settings.model_registry is None:
        registry_path(settings, "")  # raises the operator's message
    with _work_dir(options.work_dir) as work:
        summary = steps.export(settings, options.since_s, work / "events.jsonl",
                               now_ms=now_ms)
        steps.say(summary.describe())
        name = options.experiment or default_experiment_name(summary.until_ms)
        split = split_events(summary.out, summary.until_ms - int(options.holdout_s * 1000),
                             work / "train.jsonl", work / "holdout.jsonl")
        steps.say(f"training on {split.train_events} events, holding out the "
                  f"{split.holdout_events} events of the last "
                  f"{options.holdout_s / 3600:g} h")
        if split.train_events == 0:
            raise RetrainError("no events to train on before the held-out day: check that "
                               "producers write to the input topics, or export a longer "
                               "--since")
        candidate_dir = work / "candidate"
        steps.train(split.train, candidate_dir, options.train_args)
        return _compare_and_publish(settings, options, steps, name, split, candidate_dir)


def _compare_and_publish(settings: Settings, options: RetrainOptions, steps: Steps, name: str,
                         split: Split, candidate_dir: Path) -> int:
    promoted, running = steps.promoted(settings)
    cases = held_out_cases(split.holdout)
    candidate_scores = promoted_scores = None
    if cases is None:
        steps.say("the held-out day has no next-item case: nothing to evaluate on")
        if promoted not in (None, TRENDING):
            raise RetrainError(
                f"cannot compare the candidate with the promoted model {promoted}: the last "
                f"{options.holdout_s / 3600:g} h hold no session of two or more items; widen "
                "--holdout or check the input topics")
    else:
        candidate_scores = steps.evaluate(candidate_dir, cases)
        steps.say(f"candidate: {candidate_scores.describe()}")
        if promoted not in (None, TRENDING):
            promoted_scores = steps.evaluate(steps.model_path(settings, promoted), cases)
            steps.say(f"promoted {promoted}: {promoted_scores.describe()}")
    decision = decide(candidate_scores, promoted_scores, options.tolerance)
    if not decision.publish:
        steps.say(f"kept the promoted model {promoted}: {decision.reason}")
        return 0
    version = _publish(steps, candidate_dir)
    if promoted is None:
        _run(steps, ["models", "promote", version], "promoting the candidate")
        steps.say(f"published and promoted {version} (nothing was promoted before)")
        return 0
    if version == promoted:
        steps.say(f"the candidate is the promoted model {version}: nothing to try")
        return 0
    if running is not None:
        if not _is_retrain_shadow(running):
            start = " ".join(experiment_arguments(name, options.mode, promoted, version))
            raise RetrainError(
                f"published {version}, but experiment {running.name!r} is running and only "
                f"one runs at a time; once it ends, start this one with: streamrec {start}")
        _run(steps, ["experiment", "stop", running.name, "--reason",
                     f"superseded by {name} ({version})"], "stopping the earlier shadow")
    _run(steps, experiment_arguments(name, options.mode, promoted, version),
         "starting the experiment")
    role = "shadow C" if options.mode == "shadow" else "variant B (50 %)"
    steps.say(f"published {version} and started {options.mode} experiment {name}: "
              f"A={promoted}, {role}={version}")
    return 0


def _publish(steps: Steps, candidate_dir: Path) -> str:
    output = _run(steps, ["models", "publish", str(candidate_dir)], "publishing the candidate")
    words = output.split()
    if not words:
        raise RetrainError("'streamrec models publish' printed no version")
    return words[-1]


def _run(steps: Steps, argv: list[str], what: str) -> str:
    code, output = steps.cli(argv)
    if code != 0:
        raise RetrainError(f"{what} failed: 'streamrec {' '.join(argv)}' exited {code} (its "
                           "message is above)")
    return output


def _is_retrain_shadow(experiment: Any) -> bool:
    """A shadow-only experiment (one variant at 100 % plus a shadow) this job started."""
    return (str(experiment.name).startswith(EXPERIMENT_PREFIX)
            and getattr(experiment, "shadow", None) is not None
            and len(getattr(experiment, "variants", ())) == 1)


@contextlib.contextmanager
def _work_dir(given: Path | None) -> Iterator[Path]:
    """``given`` (kept afterwards), or a temporary directory removed at the end."""
    if given is not None:
        Path(given).mkdir(parents=True, exist_ok=True)
        yield Path(given)
        return
    with tempfile.TemporaryDirectory(prefix="streamrec-retrain-") as temporary:
        yield Path(temporary)
