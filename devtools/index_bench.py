"""Exact against HNSW content search, side by side in one process:
``python -m devtools.index_bench [--items 10000] [--dims 512] [--texts FILE]``.

Vectors are the text encoder's embeddings of ``--texts`` (one title per line, e.g. the
Amazon Scientific item texts) when given, else random unit vectors (the hardest case for a
graph: no structure). Queries are made the way the worker makes them: the weighted mean of
five random items' vectors. Prints build time, per-query time at batch 64 and recall@k of
the graph against exact search for each ``--ef-search`` value, and the ratio of the query
times.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from streams.catalog.index import HNSW_EF_SEARCH, ContentIndex


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
    parser.add_argument("--k", type=int, default=20, help="neighbours asked per query")
    parser.add_argument("--ef-search", default=str(HNSW_EF_SEARCH),
                        help="HNSW efSearch values to compare, e.g. 128,64")
    args = parser.parse_args()
    vectors = vectors_for(args)
    n, dims = vectors.shape
    ids = [f"i{i}" for i in range(n)]
    rng = np.random.default_rng(args.seed + 1)
    picks = rng.integers(0, n, size=(args.queries, 5))
    weights = 1.0 / np.arange(5, 0, -1, dtype=np.float32)
    queries = (vectors[picks] * weights[None, :, None]).sum(axis=1)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    k = args.k
    started = time.perf_counter()
    exact = ContentIndex(dims, exact_up_to=n)
    exact.upsert(ids, vectors)
    exact_found, exact_ms = _timed_search(exact, queries, k)
    print(f"exact: {n:,} items x {dims}: build {time.perf_counter() - started:.2f} s, "
          f"{exact_ms:.3f} ms per query (batches of 64), k {k}")
    for ef in (int(value) for value in args.ef_search.split(",")):
        started = time.perf_counter()
        index = ContentIndex(dims, exact_up_to=0, ef_search=ef)
        index.upsert(ids, vectors)
        if index.needs_rebuild():
            index = index.rebuilt()
        build = time.perf_counter() - started
        found, ms = _timed_search(index, queries, k)
        recall = np.mean([len({i for i, _ in a} & {i for i, _ in b}) / len(a)
                          for a, b in zip(exact_found, found, strict=True) if a])
        print(f"hnsw efSearch {ef}: build {build:.2f} s, {ms:.3f} ms per query, "
              f"recall@{k} against exact {recall:.4f}, query time hnsw/exact "
              f"{ms / exact_ms:.2f}x")


def _timed_search(index: ContentIndex, queries: npt.NDArray[np.float32], k: int
                  ) -> tuple[list[list[tuple[str, float]]], float]:
    started = time.perf_counter()
    found = [row for start in range(0, len(queries), 64)
             for row in index.search(queries[start:start + 64], k)]
    return found, (time.perf_counter() - started) / len(queries) * 1000

if __name__ == "__main__":
    main()
