"""``streamrec bench-scoring``: how fast a model directory scores users in ONNX Runtime.

Measures what the stream pays, through ``OnnxScorer.recommend`` (encode ids, one ORT call,
top-k with exclusions, decode), against the model's full catalogue:

* latency per user at batch 1 on one intra-op thread: p50 / p99 over ``--calls`` calls;
* throughput in users/s at batch ``--batch`` on one thread;
* the same on CUDA when ONNX Runtime can really use it.

Histories are random known items with session-like lengths (1 + geometric, mean about 5,
capped at the model's ``max_seq_len``), seeded. The report starts with the machine it ran on.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from models.serving import OnnxScorer, cuda_usable, load_scorer


@dataclass(frozen=True)
class BenchResult:
    device: str
    provider: str
    threads: int
    p50_ms: float  # batch-1 latency per user, median
    p99_ms: float  # batch-1 latency per user, 99th percentile
    batch: int
    users_per_s: float  # throughput at `batch` users per call


def machine_description() -> dict[str, Any]:
    """CPU model, core count, OS and library versions of the machine running the bench."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "ort_providers": ort.get_available_providers(),
        "cuda_usable": cuda_usable(),
    }


def random_histories(scorer: OnnxScorer, n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    lengths = np.minimum(1 + rng.geometric(0.25, size=n) - 1, scorer.max_seq_len)
    lengths = np.maximum(lengths, 1)
    items = scorer.vocabulary.items
    return [[items[i] for i in rng.integers(0, len(items), size=int(m))] for m in lengths]


def bench(
    model_dir: Path, device: str = "cpu", calls: int = 1000, batch: int = 256,
    batch_calls: int = 20, k: int = 20, seed: int = 0,
) -> BenchResult:
    """Time ``recommend`` at batch 1 and at ``batch`` on one thread (see module doc)."""
    scorer = load_scorer(model_dir, device=device, intra_op_threads=1)
    histories = random_histories(scorer, max(calls, batch * batch_calls), seed)
    for h in histories[:50]:  # warm-up
        scorer.recommend([h], k, [h])
    times = np.empty(calls)
    for i in range(calls):
        h = histories[i]
        start = time.perf_counter()
        scorer.recommend([h], k, [h])
        times[i] = time.perf_counter() - start
    scorer.recommend(histories[:batch], k, histories[:batch])  # warm-up
    start = time.perf_counter()
    for j in range(batch_calls):
        rows = histories[j * batch : (j + 1) * batch]
        scorer.recommend(rows, k, rows)
    elapsed = time.perf_counter() - start
    return BenchResult(
        device=device,
        provider=scorer.provider,
        threads=1,
        p50_ms=float(np.percentile(times, 50) * 1e3),
        p99_ms=float(np.percentile(times, 99) * 1e3),
        batch=batch,
        users_per_s=batch * batch_calls / elapsed,
    )


def run(model_dir: Path, calls: int = 1000, batch: int = 256, as_json: bool = False) -> dict:
    """Bench on CPU, and on CUDA when usable; print and return the report."""
    scorer = load_scorer(model_dir, device="cpu")
    report: dict[str, Any] = {
        "machine": machine_description(),
        "model": {"dir": str(model_dir), "name": scorer.name, "version": scorer.version,
                  "n_items": scorer.n_items, "max_seq_len": scorer.max_seq_len},
        "results": [asdict(bench(model_dir, "cpu", calls, batch))],
    }
    if cuda_usable():
        report["results"].append(asdict(bench(model_dir, "cuda", calls, batch)))
    if as_json:
        print(json.dumps(report, indent=2))
        return report
    m = report["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['os']}, onnxruntime {m['onnxruntime']}")
    print(f"model:   {scorer.name} {scorer.version}, {scorer.n_items} items, "
          f"max_seq_len {scorer.max_seq_len}")
    for r in report["results"]:
        print(f"{r['provider']:>22} ({r['threads']} thread): batch 1 p50 {r['p50_ms']:.3f} ms, "
              f"p99 {r['p99_ms']:.3f} ms per user; batch {r['batch']}: "
              f"{r['users_per_s']:,.0f} users/s")
    return report
