"""``streamrec text-model bench``: how fast the encoder embeds item texts, and how exact the
catalogue's nearest-neighbour search is, on real item texts.

Embedding throughput is measured per batch size on one ONNX Runtime thread (the worker's
setting), best of ``repeats`` runs. Retrieval: the worker's index (faiss exact inner-product
search) and, for comparison, a faiss HNSW graph, each against brute-force numpy search over
the same vectors: recall@20 of item-to-item queries, and the time per query.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.text.encoder import TextEncoder

K = 20


@dataclass(frozen=True)
class EmbeddingRate:
    batch: int
    items_per_s: float


@dataclass(frozen=True)
class RetrievalResult:
    index: str
    recall_at_20: float
    query_ms: float


def read_texts(path: Path, limit: int) -> list[str]:
    """Item texts: a RecBole ``.text`` file (id<TAB>text, header line) or one text a line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if lines and "\t" in lines[0] and lines[0].split("\t")[0].endswith(":token"):
        lines = [line.split("\t", 1)[1] for line in lines[1:] if "\t" in line]
    return [line for line in lines if line.strip()][:limit]


def embedding_rates(encoder: TextEncoder, texts: Sequence[str],
                    batches: Sequence[int] = (1, 16, 64, 256), repeats: int = 2
                    ) -> list[EmbeddingRate]:
    rates = []
    for batch in batches:
        sample = list(texts[: max(batch, min(len(texts), 512))])
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            for start in range(0, len(sample), batch):
                encoder.encode(sample[start:start + batch])
            best = min(best, time.perf_counter() - started)
        rates.append(EmbeddingRate(batch, len(sample) / best))
    return rates


def retrieval(vectors: npt.NDArray[np.float32], queries: int = 500, seed: int = 0
              ) -> list[RetrievalResult]:
    import faiss

    rng = np.random.default_rng(seed)
    picked = rng.choice(len(vectors), size=min(queries, len(vectors)), replace=False)
    query = vectors[picked]
    exact = np.argsort(-(query @ vectors.T), axis=1, kind="stable")[:, :K]
    flat = faiss.IndexFlatIP(vectors.shape[1])
    hnsw = faiss.IndexHNSWFlat(vectors.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction, hnsw.hnsw.efSearch = 200, 64
    results = []
    for name, index in (("faiss exact (served)", flat), ("faiss HNSW M=16 ef=64", hnsw)):
        index.add(vectors)
        started = time.perf_counter()
        found = np.vstack([index.search(query[i:i + 1], K)[1] for i in range(len(query))])
        elapsed = (time.perf_counter() - started) / len(query)
        hits = [len(set(found[i]) & set(exact[i])) / K for i in range(len(query))]
        results.append(RetrievalResult(name, float(np.mean(hits)), elapsed * 1000))
    return results


def run(texts_path: Path, model_path: Path, limit: int) -> str:
    encoder = TextEncoder.load(model_path, device="cpu", threads=1)
    texts = read_texts(texts_path, limit)
    lines = [f"{len(texts)} item texts from {texts_path} (mean "
             f"{np.mean([len(t) for t in texts]):.0f} characters), 1 ONNX Runtime thread"]
    for rate in embedding_rates(encoder, texts):
        lines.append(f"  embedding, batch {rate.batch:>3}: {rate.items_per_s:8.0f} items/s")
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    lines.append(f"  whole catalogue: {len(texts) / (time.perf_counter() - started):.0f} items/s")
    for result in retrieval(vectors):
        lines.append(f"  {result.index:<24} recall@20 {result.recall_at_20:.4f}, "
                     f"{result.query_ms:.3f} ms/query (batch 1)")
    return "\n".join(lines)
