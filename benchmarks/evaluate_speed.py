"""Evaluation speed: 1,000 problems x 64 candidates x 8 values of N.

Times the vectorised `evaluate_pools` (200 random subsets per N, all
methods, bootstrap intervals, paired comparisons), and, as the baseline in the
same run, a plain Python loop at its best (Python lists, every method) that
picks per subset, on a slice of the problems; prints the per-problem ratio.
Answer grouping (done once per problem) is timed apart.

Run by hand:  .venv/bin/python benchmarks/evaluate_speed.py
"""

from __future__ import annotations

import random
import time

import numpy as np

from mmprm.aggregate import AGGREGATIONS, aggregate, to_weight
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


def naive(pools: list[Pool], rng: random.Random) -> None:
    """The baseline at its best in plain Python: per subset, every method the vectorised
    code reports (random, majority, Best-of-N and weighted vote for each aggregation), over
    Python lists and Python's own sampler, with the aggregations computed once per problem."""
    for pool in pools:
        correct, groups, group_correct = pool.correct.tolist(), pool.groups.tolist(), pool.group_correct.tolist()
        n_all = len(correct)
        values = {a: [aggregate(s, a) for s in pool.scores] for a in AGGREGATIONS}
        weights = {a: [to_weight(v, a, bounded=True) for v in values[a]] for a in AGGREGATIONS}
        ones = [1.0] * n_all
        for n in NS:
            if n > n_all:
                continue
            for _ in range(SUBSETS if n < n_all else 1):
                idx = rng.sample(range(n_all), n)
                _ = sum(correct[i] for i in idx) / n
                _vote(idx, groups, ones, group_correct)
                for a in AGGREGATIONS:
                    best = max(values[a][i] for i in idx)
                    tied = [i for i in idx if values[a][i] == best]
                    _ = sum(correct[i] for i in tied) / len(tied)
                    _vote(idx, groups, weights[a], group_correct)


def _vote(idx: list[int], groups: list[int], weights: list[float], group_correct: list[bool]) -> float:
    totals: dict[int, float] = {}
    for i in idx:
        if groups[i] >= 0:
            totals[groups[i]] = totals.get(groups[i], 0.0) + weights[i]
    if not totals:
        return 0.0
    top = max(totals.values())
    winners = [g for g, t in totals.items() if t == top]
    return sum(group_correct[g] for g in winners) / len(winners)


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
    naive(pools[:sample], random.Random(0))
    baseline = (time.perf_counter() - t) / sample * PROBLEMS
    print(f"{PROBLEMS} problems x {POOL} candidates x {len(NS)} values of N, {SUBSETS} subsets per N, "
          f"{len(report['methods'])} methods")
    print(f"answer grouping (once per problem): {grouping:.1f} s")
    print(f"vectorised evaluate_pools:          {vectorised:.1f} s")
    print(f"naive per-subset loop (from {sample} problems, scaled): {baseline:.1f} s")
    print(f"speed-up: {baseline / vectorised:.1f}x")


if __name__ == "__main__":
    main()
