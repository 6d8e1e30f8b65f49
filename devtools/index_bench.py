"""Exact against HNSW content search, side by side in one process:
``python -m devtools.index_bench [--items 10000] [--dims 512] [--texts FILE]``.

Vectors are the text encoder's embeddings of ``--texts`` (one title per line, e.g. the
Amazon Scientific item texts) when given, else random unit vectors (the hardest case for a
graph: no structure). Queries are made the way the worker makes them: the weighted mean of
five random items' vectors. Prints build time, per-query time at batch 64 and recall@20 of
the graph against exact search, and the ratio of the two query times.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from streams.catalog.index import ContentIndex


def vectors_for(args: argparse.Namespace) -> npt.NDArray[np.float32]:
    if args.texts is None:
        rng = np.random.default_rng(args.seed)
        vectors = rng.standard_normal((args.items, args.dims)).astype(np.float32)
    else:
        from models.text.encoder import TextEncoder

        lines = [ln.strip() for ln in args.texts.read_text().splitlines() if ln.strip()]
        encoder = TextEncoder.load(args.model, device="cpu", threads=1)
        vectors = np.asarray(encoder.encode(lines[: args.items]), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=512)
    parser.add_argument("--queries", type=int, default=640)
    parser.add_argument("--texts", type=Path, default=None)
    parser.add_argument("--model", type=Path,
                        default=Path("var/text-model/use-multilingual-v3-quantized.onnx"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    vectors = vectors_for(args)
    n, dims = vectors.shape
    ids = [f"i{i}" for i in range(n)]
    rng = np.random.default_rng(args.seed + 1)
    picks = rng.integers(0, n, size=(args.queries, 5))
    weights = 1.0 / np.arange(5, 0, -1, dtype=np.float32)
    queries = (vectors[picks] * weights[None, :, None]).sum(axis=1)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    results = {}
    for kind, boundary in (("exact", n), ("hnsw", 0)):
        started = time.perf_counter()
        index = ContentIndex(dims, exact_up_to=boundary)
        index.upsert(ids, vectors)
        if index.needs_rebuild():
            index = index.rebuilt()
        build = time.perf_counter() - started
        started = time.perf_counter()
        found = [row for start in range(0, len(queries), 64)
                 for row in index.search(queries[start:start + 64], 20)]
        per_query = (time.perf_counter() - started) / len(queries)
        results[kind] = found
        print(f"{index.kind:5s}: {n:,} items x {dims}: build {build:.2f} s, "
              f"{per_query * 1000:.3f} ms per query (batches of 64)")
        results[f"{kind}_ms"] = per_query * 1000  # type: ignore[assignment]
    recall = np.mean([len({i for i, _ in a} & {i for i, _ in b}) / 20
                      for a, b in zip(results["exact"], results["hnsw"], strict=True)])
    print(f"recall@20 of hnsw against exact: {recall:.4f}; query time hnsw/exact "
          f"{results['hnsw_ms'] / results['exact_ms']:.2f}x")  # type: ignore[operator]


if __name__ == "__main__":
    main()
