"""``streamrec experiment report`` against the real broker: the feedback topic, duplicates
and a broken record in it, exact counts out."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from devtools.broker import EmbeddedBroker
from schemas.feedback import encode_feedback
from streams.experiments.report import aggregate
from streams.experiments.report_cli import add_report_arguments, run_report
from streams.kafka.topics import create_topics
from streams.settings import Settings
from tests.streams.experiments.support import EXPERIMENT, VARIANT_KEYS, scenario
from tests.support import isolated_settings, produce


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="streamrec experiment report")
    add_report_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(scope="module")
def settings(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = isolated_settings(broker.url, tmp_path_factory.mktemp("report"))
    create_topics(settings)
    messages = [(settings.topic_feedback, *encode_feedback(r)) for r in scenario()]
    messages.insert(5, (settings.topic_feedback, b"u1", b"{not a feedback record"))
    produce(settings, messages)
    return settings


def test_json_report_counts_each_record_once(settings: Settings,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run_report(parse(EXPERIMENT, "--json"), settings=settings) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "one JSON object on one line"
    data = orjson.loads(out)
    assert data == orjson.loads(orjson.dumps(aggregate(scenario(), EXPERIMENT)
                                             .to_json_dict()))
    a, b = data["variants"]["A"], data["variants"]["B"]
    assert [a[k] for k in ("recommendations", "users", "clicks", "carts", "purchases")] == [
        4, 3, 3, 1, 2]
    assert [b[k] for k in ("recommendations", "users", "clicks", "carts", "purchases")] == [
        3, 3, 1, 0, 1]
    assert (a["revenue"], b["revenue"], a["ctr"], b["conversion"]) == (20.0, 25.0, 0.5, 1 / 3)
    assert set(a) == VARIANT_KEYS


def test_text_report_with_another_control(settings: Settings,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run_report(parse(EXPERIMENT, "--control", "B"), settings=settings) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"experiment {EXPERIMENT} (control B)")
    assert "A ctr" in " ".join(out.split())
    assert "1 feedback records break feedback.schema.json" in out


def test_an_unknown_experiment_is_an_empty_report(settings: Settings,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert run_report(parse("never-ran", "--json"), settings=settings) == 0
    assert orjson.loads(capsys.readouterr().out) == {
        "experiment": "never-ran", "variants": {}, "comparisons": []}


def test_a_missing_topic_is_an_operator_error(broker: EmbeddedBroker, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.lifecycle import export

    monkeypatch.setattr(export, "METADATA_TIMEOUT_S", 0.5)
    lonely = isolated_settings(broker.url, tmp_path)
    with pytest.raises(export.ExportError, match="streamrec topics create"):
        run_report(parse(EXPERIMENT), settings=lonely)
