"""``streamrec evaluate`` end to end on generated benchmark directories and event files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from models import serving
from models.baselines import BASELINES, SequentialRules
from models.cli_evaluate import EXIT_ERROR, EXIT_OK, add_evaluate_parser, run_evaluate
from models.data import expand_prefixes, hidden_items, load_benchmark
from models.errors import InvalidInputError
from models.evaluation import evaluate, evaluate_benchmark
from models.protocol import SessionRecommender
from models.vocabulary import Vocabulary
from tests.models.conftest import TINY_N_ITEMS, make_sessions, write_recbole_dataset

JSON_KEYS = ["hr@10", "hr@20", "mrr@10", "mrr@20", "ndcg@10", "ndcg@20", "coverage@20", "cases"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_evaluate_parser(parser.add_subparsers())
    return parser.parse_args(["evaluate", *argv])


@pytest.fixture
def benchmark_dir(tmp_path: Path) -> Path:
    sessions = make_sessions(120, TINY_N_ITEMS, seed=1)
    prefixes, targets = expand_prefixes(sessions[100:])
    directory = tmp_path / "bench"
    directory.mkdir()
    (directory / "train_sessions.txt").write_text(
        "".join(" ".join(map(str, s)) + "\n" for s in sessions[:100])
    )
    (directory / "test.tsv").write_text(
        "".join(f"{' '.join(map(str, p))}\t{t}\n" for p, t in zip(prefixes, targets, strict=True))
    )
    return directory


@pytest.mark.parametrize("model", sorted(BASELINES))
def test_json_output_is_one_object_with_the_metric_keys(
    benchmark_dir: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(["--benchmark", str(benchmark_dir), "--model", model, "--json"])
    assert run_evaluate(args) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert list(result) == JSON_KEYS
    assert result["cases"] == len(load_benchmark(benchmark_dir).test_prefixes)
    assert all(0.0 <= result[k] <= 1.0 for k in JSON_KEYS[:-1])


def test_table_output(benchmark_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_evaluate(parse(["--benchmark", str(benchmark_dir), "--model", "sr"])) == EXIT_OK
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["model", "hr@10", "hr@20"] and row.startswith("sr ")


def test_events_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = []
    for s, session in enumerate(make_sessions(60, TINY_N_ITEMS, seed=2)):
        for p, item in enumerate(session):
            lines.append(json.dumps({
                "event_id": f"{s}-{p}", "event_type": "click", "user_id": f"u{s}",
                "item_id": f"sku-{item}", "timestamp": s * 10_000_000 + p * 1000,
            }))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines))
    assert run_evaluate(parse(["--events", str(path), "--model", "iknn", "--json"])) == EXIT_OK
    assert list(json.loads(capsys.readouterr().out)) == JSON_KEYS


def test_errors_exit_1_with_nothing_on_stdout(
    benchmark_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_evaluate(parse(["--benchmark", str(benchmark_dir), "--model", "nope"])) == (
        EXIT_ERROR
    )
    assert run_evaluate(parse(["--benchmark", str(tmp_path / "x"), "--model", "pop"])) == (
        EXIT_ERROR
    )
    assert capsys.readouterr().out == ""
    assert EXIT_ERROR == 1  # a failure; 2 is argparse's usage error (streamrec --help)


def test_model_directory_is_served_through_onnx_recommender(
    benchmark_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model whose vocabulary orders the items differently is re-indexed by external id:
    the metrics equal those of the same model evaluated in the benchmark's own indices."""
    bench = load_benchmark(benchmark_dir)
    permutation = np.random.default_rng(0).permutation(bench.n_items) + 1  # outer -> inner
    inner_vocab = Vocabulary(tuple(str(o) for o in np.argsort(permutation) + 1))
    inner_model = SequentialRules()
    inner_model.fit([[int(permutation[i - 1]) for i in s] for s in bench.train_sessions],
                    bench.n_items)

    class FakeOnnxRecommender(SessionRecommender):
        """A pre-trained model in ``inner_vocab``'s indices, as ``OnnxRecommender``."""

        def __init__(self, model_dir: Path, device: str = "auto") -> None:
            self.name, self.scorer = "fake", SimpleNamespace(vocabulary=inner_vocab)

        def fit(self, sessions, n_items):  # type: ignore[no-untyped-def]
            if n_items != len(inner_vocab):
                raise InvalidInputError("catalogue size")

        def score(self, prefixes):  # type: ignore[no-untyped-def]
            return inner_model.score(prefixes)

    monkeypatch.setattr(serving, "OnnxRecommender", FakeOnnxRecommender)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.onnx").write_bytes(b"")
    served = evaluate_benchmark(benchmark_dir, str(model_dir))
    direct_model = SequentialRules()
    direct_model.fit(bench.train_sessions, bench.n_items)
    direct = evaluate(direct_model, bench.test_prefixes, bench.test_targets)
    for key in ("hr@10", "hr@20", "mrr@20", "ndcg@20"):
        assert served[key] == pytest.approx(direct[key])


# ------------------------------------------------------------------ splits, protocols, text
def test_cold_items_protocol_reports_it_and_an_id_model_scores_0(
    benchmark_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--benchmark", str(benchmark_dir), "--model", "pop", "--protocol", "cold-items",
            "--cold-seed", "1", "--cold-fraction", "0.3", "--json"]
    assert run_evaluate(parse(argv)) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert result["protocol"] == "cold-items(seed=1, fraction=0.3)"
    assert result["hidden_items"] == 9 and "by construction" in result["note"]
    assert result["hr@20"] == 0.0 and result["ndcg@10"] == 0.0  # never saw them
    hidden = set(hidden_items(TINY_N_ITEMS, 1, 0.3).tolist())
    targets = load_benchmark(benchmark_dir).test_targets.tolist()
    assert result["cases"] == sum(t in hidden for t in targets)
    assert run_evaluate(parse(argv[:-1])) == EXIT_OK
    assert "by construction" in capsys.readouterr().out.splitlines()[-1]


def test_validation_split_and_baseline_overrides(
    benchmark_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--benchmark", str(benchmark_dir), "--split", "valid", "--json"]
    assert run_evaluate(parse([*base, "--model", "sknn"])) == EXIT_OK
    default = json.loads(capsys.readouterr().out)
    assert default["cases"] == len(load_benchmark(benchmark_dir).validation_view().test_prefixes)
    assert run_evaluate(parse([*base, "--model", "sknn", "--set", "k=1",
                               "--set", "recency_decay=none"])) == EXIT_OK
    assert json.loads(capsys.readouterr().out) != default
    assert run_evaluate(parse([*base, "--model", "sknn", "--set", "nope=1"])) == EXIT_ERROR


def test_textknn_reads_the_datas_item_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from models import evaluation

    sequences = {"0": [0, 1, 2, 3, 4], "1": [1, 2, 3, 4, 0]}
    directory = write_recbole_dataset(tmp_path / "sci", sequences)
    seen: list[tuple[str, ...] | None] = []

    def vectors(benchmark):  # type: ignore[no-untyped-def]
        seen.append(benchmark.item_texts)
        return np.eye(6, 4, k=-1, dtype=np.float32)

    monkeypatch.setattr(evaluation, "benchmark_item_vectors", vectors)
    argv = ["--data-dir", str(directory), "--model", "textknn", "--json"]
    assert run_evaluate(parse(argv)) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["cases"] == 2
    assert seen and seen[0] is not None and seen[0][0].startswith("Title I00")


def test_textknn_without_item_text_is_a_clear_error(
    benchmark_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert run_evaluate(parse(["--benchmark", str(benchmark_dir), "--model", "textknn"])) == (
        EXIT_ERROR
    )
    assert "no item text" in caplog.text


def test_cold_items_refuses_a_model_trained_on_the_full_data(
    benchmark_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.models.conftest import tiny_model_dir

    argv = ["--benchmark", str(benchmark_dir), "--model", str(tiny_model_dir()),
            "--protocol", "cold-items", "--cold-fraction", "0.3"]
    assert run_evaluate(parse(argv)) == EXIT_ERROR
    assert "may have seen the hidden items" in caplog.text


# ------------------------------------------------------------------ retrieval
def test_retrieval_ann_evaluates_the_served_candidate_lists(
    benchmark_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--retrieval ann`` with candidates covering the catalogue scores what exact does;
    with 3 candidates only ranks 1..3 exist; the JSON says how it ranked."""
    from tests.models.conftest import tiny_model_dir

    base = ["--benchmark", str(benchmark_dir), "--model", str(tiny_model_dir()), "--json",
            "--device", "cpu"]
    assert run_evaluate(parse(base)) == EXIT_OK
    exact = json.loads(capsys.readouterr().out)
    assert list(exact) == JSON_KEYS
    assert run_evaluate(parse([*base, "--retrieval", "ann", "--candidates", "30"])) == EXIT_OK
    covering = json.loads(capsys.readouterr().out)
    assert covering["retrieval"] == "ann" and covering["candidates"] == 30
    assert {k: covering[k] for k in JSON_KEYS} == pytest.approx(exact)
    argv = [*base, "--retrieval", "ann", "--candidates", "3", "--ef-search", "8"]
    assert run_evaluate(parse(argv)) == EXIT_OK
    few = json.loads(capsys.readouterr().out)
    assert few["hr@10"] == pytest.approx(few["hr@20"]) and few["ef_search"] == 8


def test_retrieval_options_are_checked(
    benchmark_dir: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    base = ["--benchmark", str(benchmark_dir), "--json"]
    assert run_evaluate(parse([*base, "--model", "sr", "--retrieval", "ann"])) == EXIT_ERROR
    assert "model directories" in caplog.text
    assert run_evaluate(parse([*base, "--model", "sr", "--candidates", "5"])) == EXIT_ERROR
    assert "--retrieval ann" in caplog.text
    assert capsys.readouterr().out == ""
