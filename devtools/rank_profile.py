"""Where the scoring thread's time goes per user: ``python -m devtools.rank_profile
[--items 10000] [--users 60]``.

Builds a catalogue of random 512-d unit vectors (a graph index's worst case), a trending
board and a stand-in model that answers at once, then times
:func:`streams.scoring.scorer.rank_users` for one batch of users with content retrieval and
without it, side by side, and prints a cProfile of the first (cumulative time). The model
call itself is not measured here (``streamrec bench-scoring`` does that).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Collection, Sequence

import numpy as np

from schemas.items import Item
from streams.candidates.session import Candidates
from streams.catalog.catalog import Catalog
from streams.catalog.records import CatalogRecord
from streams.ranking.layer import RankingConfig, RankingLayer
from streams.ranking.rules import RuleSet
from streams.ranking.search import QueryEmbeddings
from streams.scoring.scorer import Retrieval, rank_users
from streams.state.trending import record_many

NOW_MS = 1_795_456_800_000


class InstantModel:
    """Recommends random catalogue items at no cost."""

    name, version = "instant", "1"

    def __init__(self, items: int, seed: int) -> None:
        self.items, self.rng = items, np.random.default_rng(seed)

    def knows(self, item_id: str) -> bool:
        return True

    def recommend(self, histories: Sequence[Sequence[str]], k: int,
                  exclude: Sequence[Collection[str]]) -> list[list[tuple[str, float]]]:
        return [[(f"i{j}", 1.0 / (n + 1)) for n, j in
                 enumerate(self.rng.integers(0, self.items, k).tolist())] for _ in histories]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    vectors = rng.standard_normal((args.items, 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    catalog = Catalog()
    catalog.apply({f"i{i}": CatalogRecord(Item(f"i{i}", f"t{i}", category=(f"c{i % 20}",)),
                                          "h", vectors[i]) for i in range(args.items)})
    board = record_many(None, [(f"i{i}", float(rng.random()), NOW_MS)
                               for i in range(min(1000, args.items))], 3600.0, 1000)
    users = {f"u{u}": Candidates(history=[f"i{j}" for j in
                                          rng.integers(0, args.items, 8).tolist()],
                                 exclude=frozenset(), search=None)
             for u in range(args.users)}
    layer = RankingLayer(RankingConfig(k=20, search_boost=2.0, search_half_life_s=900.0,
                                       diversity_lambda=0.0),
                         catalog=catalog, encode=lambda: None, queries=QueryEmbeddings(100),
                         rules=lambda: RuleSet(()))
    model, retrieval = InstantModel(args.items, args.seed), Retrieval(catalog, 5, 5)

    def batch(with_content: bool) -> None:
        rank_users(users, model, board, k=20, now_ms=NOW_MS, retrieval=retrieval,
                   layer=layer, with_content=with_content)

    for label, with_content in (("with content retrieval", True), ("without", False)):
        started = time.perf_counter()
        for _ in range(args.rounds):
            batch(with_content)
        per_user = (time.perf_counter() - started) / args.rounds / args.users
        print(f"{label}: {per_user * 1000:.3f} ms per user ({catalog.indexed:,} items, "
              f"batches of {args.users})")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.rounds):
        batch(True)
    profile.disable()
    pstats.Stats(profile).sort_stats("cumulative").print_stats(18)


if __name__ == "__main__":
    main()
