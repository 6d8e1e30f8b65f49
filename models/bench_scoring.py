"""``streamrec bench-scoring``: how fast a model directory scores users in ONNX Runtime,
ranking exactly and through the item index.

Measures what the stream pays, through ``OnnxScorer.recommend`` (encode ids, the model call,
top-k with exclusions, decode), once per ranking mode (``models.serving``):

* ``exact``: the scores graph over the full catalogue, then top-k;
* ``ann``: the encoder graph, ``candidates`` items from the HNSW index, exact re-scoring;

and for each:

* latency per user at batch 1 on one intra-op thread: p50 / p99 over ``--calls`` calls;
* CPU per scored user at batch 1: the process's CPU time (user + system, every thread)
  over those calls divided by the users;
* throughput in users/s, and CPU ms per user, at batch ``--batch`` (all touched users of a
  micro-batch are scored in one call in the stream);
* load time (``load_scorer``; for ``ann`` it includes building the index, also reported
  alone), the index's size, and for ``ann`` the share of the exact top-k it returns
  (``recall@k vs exact``, over the throughput histories) and the share of timed rows it
  ranked exactly because fewer than ``k`` candidates survived the exclusions;
* the same on CUDA when ONNX Runtime can really use it.

Histories are random known items with session-like lengths (1 + geometric, mean about 5,
capped at the model's ``max_seq_len``), seeded, or with ``--benchmark DIR`` a seeded sample of
that benchmark's test prefixes (real sessions: the index search costs about half as much per
user on Diginetica's than on random item mixtures, whose session vectors are unlike any real
one); each call excludes the history's own items, as the stream excludes purchased ones. The
report starts with the machine it ran on.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from models.errors import InvalidInputError
from models.model_dir import read_model_dir
from models.retrieval import DEFAULT_CANDIDATES
from models.serving import ANN, EXACT, OnnxScorer, cuda_usable, load_scorer


@dataclass(frozen=True)
class BenchResult:
    device: str
    provider: str
    retrieval: str  # "exact" or "ann"
    candidates: int | None  # ann: items retrieved per user
    ef_search: int | None  # ann: HNSW search breadth
    threads: int
    p50_ms: float  # batch-1 latency per user, median
    p99_ms: float  # batch-1 latency per user, 99th percentile
    cpu_ms_per_user_b1: float  # process CPU time per user at batch 1
    batch: int
    users_per_s: float  # throughput at `batch` users per call
    cpu_ms_per_user: float  # process CPU time per user at `batch`
    load_s: float  # load_scorer wall time (index build included)
    index_build_s: float | None  # ann: building the item index
    index_mb: float | None  # ann on CPU: the serialised index
    recall_vs_exact: float | None  # ann: share of the exact top-k it returns
    exact_fallback_share: float | None  # ann: timed rows ranked exactly (< k candidates left)
    model: str = ""  # the model directory's name and its blend, in words
    p_at_20: float | None = None  # exact: HR@20 = P@20 on the test cases (metrics.json)
    mrr_at_20: float | None = None  # exact: MRR@20 on the test cases (metrics.json)


def machine_description() -> dict[str, Any]:
    """CPU model, core count, OS and library versions of the machine running the bench."""
    import faiss

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
        "faiss": faiss.__version__,
        "faiss_gpus": int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0,
        "load_average": list(os.getloadavg()),
    }


def random_histories(scorer: OnnxScorer, n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    lengths = np.minimum(1 + rng.geometric(0.25, size=n) - 1, scorer.max_seq_len)
    lengths = np.maximum(lengths, 1)
    items = scorer.vocabulary.items
    return [[items[i] for i in rng.integers(0, len(items), size=int(m))] for m in lengths]


def benchmark_histories(
    scorer: OnnxScorer, benchmark_dir: Path, n: int, seed: int
) -> list[list[str]]:
    """A seeded sample of ``n`` test prefixes of the benchmark in ``benchmark_dir``, as
    external ids (items the model does not know are dropped by the scorer, as online)."""
    from models.data import load_benchmark

    data = load_benchmark(Path(benchmark_dir))
    items = data.vocabulary.items
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(data.test_prefixes), size=n, replace=n > len(data.test_prefixes))
    return [[items[i - 1] for i in data.test_prefixes[p]] for p in picks.tolist()]


def recall_vs_exact(
    ann: OnnxScorer, exact: OnnxScorer, histories: list[list[str]], k: int, batch: int = 256
) -> float:
    """Mean share of ``exact``'s top-``k`` that ``ann`` returns, excluding each history's
    own items, over ``histories``."""
    hits = total = 0
    for start in range(0, len(histories), batch):
        rows = histories[start : start + batch]
        got = ann.recommend(rows, k, rows)
        want = exact.recommend(rows, k, rows)
        for got_row, want_row in zip(got, want, strict=True):
            hits += len({i for i, _ in got_row} & {i for i, _ in want_row})
            total += len(want_row)
    return hits / max(total, 1)


def bench(
    model_dir: Path, device: str = "cpu", calls: int = 1000, batch: int = 256,
    batch_calls: int = 20, k: int = 20, seed: int = 0, retrieval: str = EXACT,
    candidates: int = DEFAULT_CANDIDATES, ef_search: int | None = None,
    benchmark_dir: Path | None = None,
) -> BenchResult:
    """Time ``recommend`` at batch 1 and at ``batch`` on one thread (see module doc)."""
    if calls < 1 or batch < 1 or batch_calls < 1:
        raise InvalidInputError("calls, batch and batch_calls must be positive")
    started = time.perf_counter()
    scorer = load_scorer(model_dir, device=device, intra_op_threads=1, retrieval=retrieval,
                         candidates=candidates, ef_search=ef_search)
    load_s = time.perf_counter() - started
    n_histories = max(calls, batch * batch_calls)
    histories = (random_histories(scorer, n_histories, seed) if benchmark_dir is None
                 else benchmark_histories(scorer, benchmark_dir, n_histories, seed))
    for h in histories[:50]:  # warm-up
        scorer.recommend([h], k, [h])
    retriever = scorer.retriever
    fallbacks_before = 0 if retriever is None else retriever.fallback_rows
    times = np.empty(calls)
    cpu_started = time.process_time()
    for i in range(calls):
        h = histories[i]
        start = time.perf_counter()
        scorer.recommend([h], k, [h])
        times[i] = time.perf_counter() - start
    cpu_b1 = time.process_time() - cpu_started
    scorer.recommend(histories[:batch], k, histories[:batch])  # warm-up
    cpu_started, start = time.process_time(), time.perf_counter()
    for j in range(batch_calls):
        rows = histories[j * batch : (j + 1) * batch]
        scorer.recommend(rows, k, rows)
    elapsed, cpu_batch = time.perf_counter() - start, time.process_time() - cpu_started
    recall = fallback_share = None
    if retriever is not None:
        timed_rows = calls + batch + batch * batch_calls  # the batch warm-up ran in between
        fallback_share = (retriever.fallback_rows - fallbacks_before) / timed_rows
        exact = load_scorer(model_dir, device=device, intra_op_threads=1, retrieval=EXACT)
        recall = recall_vs_exact(scorer, exact, histories[: batch * batch_calls], k)
    p20, mrr20 = recorded_accuracy(scorer.model_dir.metrics, scorer.retrieval)
    return BenchResult(
        device=device,
        provider=scorer.provider,
        retrieval=scorer.retrieval,
        candidates=None if retriever is None else retriever.settings.candidates,
        ef_search=None if retriever is None else retriever.settings.breadth,
        threads=1,
        p50_ms=float(np.percentile(times, 50) * 1e3),
        p99_ms=float(np.percentile(times, 99) * 1e3),
        cpu_ms_per_user_b1=cpu_b1 / calls * 1e3,
        batch=batch,
        users_per_s=batch * batch_calls / elapsed,
        cpu_ms_per_user=cpu_batch / (batch * batch_calls) * 1e3,
        load_s=load_s,
        index_build_s=None if retriever is None else retriever.index.build_seconds,
        index_mb=None if retriever is None else _mb(retriever.index.nbytes()),
        recall_vs_exact=recall,
        exact_fallback_share=fallback_share,
        model=scorer.name + ("" if scorer.blend is None else f" + {scorer.blend.describe()}"),
        p_at_20=p20,
        mrr_at_20=mrr20,
    )


def recorded_accuracy(metrics: dict[str, Any], retrieval: str) -> tuple[float | None,
                                                                       float | None]:
    """``(P@20, MRR@20)`` on the test cases as ``metrics.json`` records them for the
    directory as served (``streamrec train`` evaluates the exported model, its blend
    included, by exact ranking; ``streamrec blend`` re-evaluates it): None for ``ann`` and
    for a directory evaluated on no test split.

    >>> recorded_accuracy({"test": {"hr@20": 0.5, "mrr@20": 0.2}}, "exact")
    (0.5, 0.2)
    >>> recorded_accuracy({"test": {"hr@20": 0.5, "mrr@20": 0.2}}, "ann")
    (None, None)
    """
    test = metrics.get("test") or {}
    if retrieval != EXACT or "hr@20" not in test or "mrr@20" not in test:
        return None, None
    return float(test["hr@20"]), float(test["mrr@20"])


def _mb(n: int | None) -> float | None:
    return None if n is None else n / 2**20


def devices_for(device: str) -> list[str]:
    """The devices ``--device`` benches: ``auto`` -> CPU, and CUDA when usable; ``cpu``
    -> CPU; ``cuda`` -> CUDA (``load_scorer`` raises when it is not usable)."""
    if device == "auto":
        return ["cpu", "cuda"] if cuda_usable() else ["cpu"]
    if device in ("cpu", "cuda"):
        return [device]
    raise InvalidInputError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")


def run(
    model_dir: Path, calls: int = 1000, batch: int = 256, as_json: bool = False,
    retrieval: tuple[str, ...] | None = None, device: str = "auto",
    candidates: int = DEFAULT_CANDIDATES, ef_search: int | None = None, batch_calls: int = 20,
    benchmark_dir: Path | None = None, also: Sequence[Path] = (),
) -> dict[str, Any]:
    """Bench every requested ranking mode (default: ``exact``, and ``ann`` when the model
    directory has the retrieval pair) on every device of ``device``, for ``model_dir`` and
    then each directory of ``also`` (one table, so models can be compared: accuracy per
    latency); print and return the report (``model``: the first directory)."""
    directory = read_model_dir(Path(model_dir))
    results = [result for path in (Path(model_dir), *map(Path, also))
               for result in _bench_all(path, calls, batch, retrieval, device, candidates,
                                        ef_search, batch_calls, benchmark_dir)]
    report: dict[str, Any] = {
        "machine": machine_description(),
        "model": {"dir": str(model_dir), "name": directory.name, "version": directory.version,
                  "n_items": directory.n_items, "max_seq_len": directory.max_seq_len,
                  "retrieval_pair": directory.has_encoder},
        "histories": "random" if benchmark_dir is None else f"test prefixes of {benchmark_dir}",
        "results": results,
    }
    if as_json:
        print(json.dumps(report, indent=2))
        return report
    print(render(report))
    return report


def _bench_all(
    model_dir: Path, calls: int, batch: int, retrieval: tuple[str, ...] | None, device: str,
    candidates: int, ef_search: int | None, batch_calls: int, benchmark_dir: Path | None,
) -> list[dict[str, Any]]:
    """:func:`bench` of one directory in every requested mode on every device, as dicts."""
    modes = retrieval or ((EXACT, ANN) if read_model_dir(model_dir).has_encoder else (EXACT,))
    return [asdict(bench(model_dir, dev, calls, batch, batch_calls, retrieval=mode,
                         candidates=candidates, ef_search=ef_search,
                         benchmark_dir=benchmark_dir))
            for dev in devices_for(device) for mode in modes]


def render(report: dict[str, Any]) -> str:
    """The report as text: machine, model, then a Markdown table, one row per result."""
    m, model = report["machine"], report["model"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['os']}, onnxruntime {m['onnxruntime']}, "
        f"faiss {m['faiss']} ({m['faiss_gpus']} GPUs), load average "
        f"{m['load_average'][0]:.2f}",
        f"model:   {model['name']} {model['version']}, {model['n_items']} items, "
        f"max_seq_len {model['max_seq_len']}; histories: {report['histories']}",
        "",
        "| provider | retrieval | model | P@20 | MRR@20 | p50 ms | p99 ms | CPU ms/user (b1) "
        "| batch | users/s | CPU ms/user (batch) | load s | index build s | index MiB "
        "| recall@20 vs exact | exact fallbacks |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        mode = r["retrieval"] if r["retrieval"] == EXACT else (
            f"ann ({r['candidates']} cand., ef {r['ef_search']})")
        lines.append(
            f"| {r['provider']} | {mode} | {r['model']} | {_pct(r['p_at_20'])} "
            f"| {_pct(r['mrr_at_20'])} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} "
            f"| {r['cpu_ms_per_user_b1']:.3f} | {r['batch']} | {r['users_per_s']:,.0f} "
            f"| {r['cpu_ms_per_user']:.3f} | {r['load_s']:.2f} | {_opt(r['index_build_s'], 2)} "
            f"| {_opt(r['index_mb'], 1)} | {_opt(r['recall_vs_exact'], 4)} "
            f"| {_opt(r['exact_fallback_share'], 4)} |"
        )
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def _opt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"
