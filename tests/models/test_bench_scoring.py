"""``streamrec bench-scoring`` (``models.bench_scoring``) and the one-command GPU script
``devtools/gpu_bench.sh``, whose CPU path (``--cpu``) runs here; its CUDA check is tested to
refuse a machine where ONNX Runtime cannot use CUDA."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.bench_scoring import bench, devices_for, render, run
from models.cli_bench_scoring import add_bench_scoring_parser, run_bench_scoring
from models.cli_common import EXIT_ERROR, EXIT_OK
from models.serving import cuda_usable
from tests.models.conftest import TINY_N_ITEMS, tiny_model_dir

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "devtools" / "gpu_bench.sh"
SMALL = {"calls": 20, "batch": 8, "batch_calls": 2}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bench_scoring_parser(parser.add_subparsers())
    return parser.parse_args(["bench-scoring", *argv])


def test_bench_measures_both_modes(capsys: pytest.CaptureFixture[str]) -> None:
    report = run(tiny_model_dir(), device="cpu", **SMALL)
    rows = {r["retrieval"]: r for r in report["results"]}
    assert set(rows) == {"exact", "ann"} and report["model"]["retrieval_pair"]
    for r in rows.values():
        assert r["provider"] == "CPUExecutionProvider" and r["threads"] == 1
        assert 0 < r["p50_ms"] <= r["p99_ms"] and r["users_per_s"] > 0
        assert r["cpu_ms_per_user_b1"] > 0 and r["cpu_ms_per_user"] > 0 and r["batch"] == 8
    assert rows["exact"]["index_build_s"] is None and rows["exact"]["recall_vs_exact"] is None
    ann = rows["ann"]
    assert ann["candidates"] >= TINY_N_ITEMS and ann["recall_vs_exact"] == 1.0  # covers all
    assert ann["index_build_s"] >= 0 and ann["index_mb"] > 0
    table = capsys.readouterr().out
    assert "| CPUExecutionProvider | exact |" in table and "| CPUExecutionProvider | ann (" in table
    assert table == render(report) + "\n"


def test_models_side_by_side_with_their_recorded_accuracy(tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir(), other)
    (other / "metrics.json").write_text(json.dumps({"test": {"hr@20": 0.5, "mrr@20": 0.25}}))
    report = run(tiny_model_dir(), device="cpu", retrieval=("exact", "ann"), also=[other],
                 as_json=True, **SMALL)
    rows = [(r["retrieval"], r["p_at_20"], r["mrr_at_20"]) for r in report["results"]]
    assert rows[2:] == [("exact", 0.5, 0.25), ("ann", None, None)]  # ann: not recorded
    assert all(r["model"] == "tiny-onnx" for r in report["results"])
    assert "| CPUExecutionProvider | exact | tiny-onnx | 50.00 | 25.00 |" in render(report)


def test_fewer_candidates_than_k_fall_back_to_exact_and_say_so() -> None:
    result = bench(tiny_model_dir(), retrieval="ann", candidates=5, ef_search=16, k=20,
                   **SMALL)
    assert (result.candidates, result.ef_search) == (5, 16)
    assert result.exact_fallback_share == 1.0 and result.recall_vs_exact == 1.0
    result = bench(tiny_model_dir(), retrieval="ann", candidates=12, k=3, **SMALL)
    assert result.exact_fallback_share is not None and result.exact_fallback_share < 1.0


def test_devices() -> None:
    assert devices_for("cpu") == ["cpu"] and devices_for("cuda") == ["cuda"]
    assert devices_for("auto") == (["cpu", "cuda"] if cuda_usable() else ["cpu"])


def test_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = str(tiny_model_dir())
    small = ["--calls", "10", "--batch", "4", "--batch-calls", "1", "--device", "cpu"]
    assert run_bench_scoring(parse(["--model", model, *small, "--retrieval", "ann",
                                    "--json"])) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert [r["retrieval"] for r in report["results"]] == ["ann"]
    assert run_bench_scoring(parse(["--model", model, "--retrieval", "exact,hnsw"])) == (
        EXIT_ERROR)
    assert run_bench_scoring(parse(["--model", str(tmp_path), *small])) == EXIT_ERROR
    if not cuda_usable():
        assert run_bench_scoring(parse(["--model", model, "--calls", "10",
                                        "--device", "cuda"])) == EXIT_ERROR


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=240, check=False)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_gpu_script_runs_its_cpu_path() -> None:
    done = _script("--cpu", "--no-setup", "--calls", "10", "--batch", "4", "--batch-calls", "1",
                   str(tiny_model_dir()))
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| CPUExecution")]
    assert [row.split("|")[2].split()[0] for row in rows] == ["exact", "ann"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_gpu_script_refuses_a_machine_without_cuda_and_bad_usage() -> None:
    if cuda_usable():
        pytest.skip("CUDA is usable on this machine")
    done = _script("--no-setup", str(tiny_model_dir()))
    assert done.returncode == 2 and "cannot use CUDA" in done.stderr and "--cpu" in done.stderr
    assert _script("--no-setup").returncode == 2
    assert _script("--bogus").returncode == 2
    assert "one command" in _script("--help").stdout


def test_histories_can_come_from_a_benchmarks_test_prefixes(tmp_path: Path) -> None:
    from models.bench_scoring import benchmark_histories
    from models.serving import load_scorer

    (tmp_path / "train_sessions.txt").write_text("1 2 3\n4 5\n")
    (tmp_path / "test.tsv").write_text("1 2\t3\n7\t8\n9 10 11\t12\n")
    scorer = load_scorer(tiny_model_dir(), device="cpu", retrieval="exact")
    histories = benchmark_histories(scorer, tmp_path, 6, seed=0)
    assert len(histories) == 6 and set(map(tuple, histories)) <= {("1", "2"), ("7",),
                                                                  ("9", "10", "11")}
    report = run(tiny_model_dir(), device="cpu", benchmark_dir=tmp_path, **SMALL)
    assert report["histories"] == f"test prefixes of {tmp_path}"
