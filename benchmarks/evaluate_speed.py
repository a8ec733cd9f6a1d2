"""Evaluation speed: 1,000 problems x 64 candidates x 8 values of N.

Times the vectorised `evaluate_pools` (200 random subsets per N, all
methods, bootstrap intervals), and, as the baseline in the same run, a plain
Python loop that picks per subset, on a slice of the problems; prints the
per-problem ratio. Answer grouping (done once per problem) is timed apart.

Run by hand:  .venv/bin/python benchmarks/evaluate_speed.py
"""

from __future__ import annotations

import time

import numpy as np

from mmprm.aggregate import AGGREGATIONS, aggregate
from mmprm.evaluate.report import Pool, build_pools, evaluate_pools
from mmprm.grading import RuleGrader
from mmprm.types import Solution

PROBLEMS, POOL, NS, SUBSETS = 1000, 64, [1, 2, 4, 8, 16, 24, 32, 64], 200


def synthetic_solutions(rng: np.random.Generator) -> list[Solution]:
    out = []
    for p in range(PROBLEMS):
        gold = int(rng.integers(0, 20))
        for _ in range(POOL):
            answer = gold if rng.random() < 0.35 else int(rng.integers(0, 20))
            steps = int(rng.integers(2, 9))
            scores = list(np.clip(rng.normal(0.6 if answer == gold else 0.45, 0.2, steps), 0, 1))
            out.append(Solution(f"p{p}", ["s"] * steps, str(answer), answer == gold, scores))
    return out


def naive(pools: list[Pool], rng: np.random.Generator) -> None:
    """Per subset, per method, in plain Python: the baseline."""
    for pool in pools:
        n_all = len(pool.correct)
        values = {a: [aggregate(s, a) for s in pool.scores] for a in AGGREGATIONS}
        for n in NS:
            for _ in range(SUBSETS if n < n_all else 1):
                idx = rng.choice(n_all, size=n, replace=False)
                for a in AGGREGATIONS:
                    best = max(values[a][i] for i in idx)
                    tied = [i for i in idx if values[a][i] == best]
                    _ = sum(pool.correct[i] for i in tied) / len(tied)
                    totals: dict[int, float] = {}
                    for i in idx:
                        if pool.groups[i] >= 0:
                            totals[pool.groups[i]] = totals.get(pool.groups[i], 0.0) + values[a][i]


def main() -> None:
    rng = np.random.default_rng(0)
    solutions = synthetic_solutions(rng)
    t = time.perf_counter()
    pools = build_pools(solutions, RuleGrader())
    grouping = time.perf_counter() - t
    t = time.perf_counter()
    report = evaluate_pools(pools, NS, subsets_per_n=SUBSETS)
    vectorised = time.perf_counter() - t
    sample = 20
    t = time.perf_counter()
    naive(pools[:sample], rng)
    baseline = (time.perf_counter() - t) / sample * PROBLEMS
    print(f"{PROBLEMS} problems x {POOL} candidates x {len(NS)} values of N, {SUBSETS} subsets per N, "
          f"{len(report['methods'])} methods")
    print(f"answer grouping (once per problem): {grouping:.1f} s")
    print(f"vectorised evaluate_pools:          {vectorised:.1f} s")
    print(f"naive per-subset loop (from {sample} problems, scaled): {baseline:.1f} s")
    print(f"speed-up: {baseline / vectorised:.1f}x")


if __name__ == "__main__":
    main()
