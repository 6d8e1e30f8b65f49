"""The runtime side of ``models`` never loads PyTorch or onnx: a worker serving a model
needs numpy and ONNX Runtime only (torch and onnx will live in a ``[train]`` extra).

Each check runs in a fresh interpreter, so what this test process already imported does
not hide an import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.serving import OnnxRecommender, load_scorer
from tests.models.conftest import tiny_model_dir

REPO = Path(__file__).resolve().parents[2]
TRAIN_SIDE = ("models.cli_train", "models.export", "models.model_dir_writer", "models.neural")
"""Modules (and packages) that may import PyTorch/onnx; every other ``models`` module is
runtime side and must not."""


def run_fresh(script: str, *args: str) -> dict:
    """Run ``script`` in a new interpreter at the repository root; it prints one JSON line."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def runtime_modules() -> list[str]:
    """Every module under ``models/`` outside :data:`TRAIN_SIDE`."""
    names = []
    for path in sorted((REPO / "models").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not any(name == t or name.startswith(t + ".") for t in TRAIN_SIDE):
            names.append(name)
    return names


SERVE = """
import json, sys
from models.serving import OnnxRecommender, load_scorer
scorer = load_scorer(sys.argv[1], device="cpu")
served = scorer.recommend([["3", "4", "5"], ["nope"], ["7"]], k=5, exclude=[{"6"}, set(), set()])
recommender = OnnxRecommender(sys.argv[1], device="cpu")
recommender.fit([], scorer.n_items)
ranked = recommender.rank([[3, 4, 5], [7]], k=5, exclude=[[6], []])
print(json.dumps({"served": served, "ranked": ranked.tolist(),
                  "loaded": [m for m in ("torch", "onnx") if m in sys.modules]}))
"""


def test_serving_a_model_directory_loads_neither_torch_nor_onnx() -> None:
    model_dir = tiny_model_dir()  # exported here, in the parent process (with PyTorch)
    result = run_fresh(SERVE, str(model_dir))
    assert result["loaded"] == []
    scorer = load_scorer(model_dir, device="cpu")
    expected = scorer.recommend([["3", "4", "5"], ["nope"], ["7"]], k=5,
                                exclude=[{"6"}, set(), set()])
    for got_row, want_row in zip(result["served"], expected, strict=True):
        assert [item for item, _ in got_row] == [item for item, _ in want_row]
        np.testing.assert_allclose([s for _, s in got_row], [s for _, s in want_row], atol=1e-6)
    recommender = OnnxRecommender(model_dir, device="cpu")
    recommender.fit([], scorer.n_items)
    assert result["ranked"] == recommender.rank([[3, 4, 5], [7]], k=5, exclude=[[6], []]).tolist()


IMPORT_EACH = """
import importlib, json, sys
culprits = {}
for name in sys.argv[1:]:
    importlib.import_module(name)
    for heavy in ("torch", "onnx"):
        if heavy in sys.modules and heavy not in culprits:
            culprits[heavy] = name
print(json.dumps(culprits))
"""


def test_runtime_modules_import_neither_torch_nor_onnx() -> None:
    modules = runtime_modules()
    assert {"models.serving", "models.model_dir", "models.protocol", "models.evaluation",
            "models.bench_scoring", "models.cli_bench_scoring"} <= set(modules)
    culprits = run_fresh(IMPORT_EACH, *modules)
    assert culprits == {}, f"first runtime module that loaded them: {culprits}"


@pytest.mark.parametrize(
    ("module", "loads"), [("models.export", {"torch", "onnx"}), ("models.neural", {"torch"})]
)
def test_the_check_would_see_them(module: str, loads: set[str]) -> None:
    """The subprocess check is not blind: train-side modules do load them."""
    assert run_fresh(IMPORT_EACH, module) == dict.fromkeys(loads, module)
