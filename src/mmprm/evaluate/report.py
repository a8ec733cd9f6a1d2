"""`mmprm evaluate`: every selection method at every N, with intervals.

For N below a problem's pool size the accuracy is the mean over many random
subsets of N candidates; the 95% interval is a bootstrap over problems.
Writes report.json (`{"methods": {method: {N: accuracy}}, "intervals": ...,
"counts": ..., "notes": [...]}`), report.md and accuracy.png.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mmprm.aggregate import AGGREGATIONS, aggregate, group_is_correct, to_weight
from mmprm.config import setting
from mmprm.grading import Grader
from mmprm.io import Rejected, RejectLog, read_records
from mmprm.search.select import best_of_n, group_answers, pass_at_k, subsets, vote
from mmprm.types import Solution


@dataclass
class Pool:
    """One problem's candidates, ready for selection."""

    problem_id: str
    correct: np.ndarray           # (n,) bool
    groups: np.ndarray            # (n,) answer group, -1 = no answer
    group_correct: np.ndarray     # (G,) bool
    scores: list[list[float]] | None  # step scores, None when unscored


def build_pools(solutions: list[Solution], grader: Grader, *, progress: bool = False) -> list[Pool]:
    by_problem: dict[str, list[Solution]] = {}
    for s in solutions:
        by_problem.setdefault(s.problem_id, []).append(s)
    pools = []
    for pid, cands in tqdm(by_problem.items(), desc="group answers", unit="prob", disable=not progress):
        groups = group_answers([c.answer for c in cands], grader)
        correct = np.array([bool(c.correct) for c in cands])
        n_groups = int(groups.max()) + 1 if (groups >= 0).any() else 0
        group_correct = np.array([group_is_correct(correct[groups == g]) for g in range(n_groups)], dtype=bool)
        scored = all(c.step_scores is not None for c in cands)
        pools.append(Pool(pid, correct, groups, group_correct, [c.step_scores for c in cands] if scored else None))
    return pools


def _bootstrap(per_problem: np.ndarray, rng: np.random.Generator, draws: int) -> list[float]:
    if len(per_problem) == 0:
        return [float("nan"), float("nan")]
    idx = rng.integers(0, len(per_problem), size=(draws, len(per_problem)))
    means = per_problem[idx].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def evaluate_pools(pools: list[Pool], n_values: list[int], *, bounded: bool | None = None,
                   subsets_per_n: int = 200, bootstrap: int = 1000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    scored = bool(pools) and all(p.scores is not None for p in pools)
    notes = ["Ties are split evenly: a tied choice counts as the expected accuracy under a random tie-break.",
             "Majority groups answers by mathematical equivalence; candidates without an answer do not vote.",
             "pass@k is the oracle (any of k right), by the unbiased estimator over the whole pool."]
    if scored and bounded is None:
        flat = [v for p in pools for c in p.scores for v in c]
        bounded = all(0.0 <= v <= 1.0 for v in flat)
    if scored:
        notes.append("Step scores lie in [0, 1] and are read as probabilities." if bounded else
                     "Step scores leave [0, 1]: they are read as logits; product and vote weights use their "
                     "logistic values.")
    else:
        notes.append("Candidates carry no step scores: only the PRM-free methods are reported.")
    methods = ["random", "majority", "pass@k"]
    if scored:
        methods += [f"bon_{a}" for a in AGGREGATIONS] + [f"weighted_{a}" for a in AGGREGATIONS]
    per: dict[str, dict[int, list[float]]] = {m: {n: [] for n in n_values} for m in methods}
    agg_cache: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
    for pi, pool in enumerate(pools):
        size = len(pool.correct)
        for n in n_values:
            if n > size:
                continue
            idx = subsets(size, n, subsets_per_n, rng)
            correct = pool.correct[idx]
            per["random"][n].append(float(correct.mean()))
            per["pass@k"][n].append(pass_at_k(size, int(pool.correct.sum()), n))
            groups = pool.groups[idx]
            per["majority"][n].append(float(vote(groups, np.ones(idx.shape), pool.group_correct).mean()))
            if not scored:
                continue
            for a in AGGREGATIONS:
                key = (pi, a)
                if key not in agg_cache:
                    values = np.array([aggregate(s, a, bounded=bounded) for s in pool.scores])
                    agg_cache[key] = values, np.array([to_weight(v, a, bounded=bounded) for v in values])
                values, weights = agg_cache[key]
                per[f"bon_{a}"][n].append(float(best_of_n(values[idx], correct).mean()))
                per[f"weighted_{a}"][n].append(float(vote(groups, weights[idx], pool.group_correct).mean()))
    report = {"methods": {}, "intervals": {}, "counts": {
        "problems": len(pools), "candidates": int(sum(len(p.correct) for p in pools)),
        "problems_per_n": {str(n): len(per["random"][n]) for n in n_values},
        "subsets_per_n": subsets_per_n, "bootstrap_draws": bootstrap}, "notes": notes}
    for m in methods:
        report["methods"][m] = {str(n): float(np.mean(v)) for n, v in per[m].items() if v}
        report["intervals"][m] = {str(n): _bootstrap(np.array(v), rng, bootstrap) for n, v in per[m].items() if v}
    report["per_problem"] = {m: {str(n): v for n, v in per[m].items() if v} for m in methods}
    largest = str(max((n for n in n_values if per["random"][n]), default=max(n_values)))
    pairs = [(m, "majority") for m in methods if m.startswith(("bon_", "weighted_"))] + [("majority", "random")]
    report["comparisons"] = [compare(report, a, b, largest, draws=bootstrap, seed=seed) for a, b in pairs]
    return report


def paired_difference(a: list[float], b: list[float], *, draws: int = 1000, seed: int = 0) -> dict:
    """Mean of a − b over the same problems, with a paired bootstrap 95% interval (the
    problems resampled together): the only honest basis for "A beats B"."""
    if len(a) != len(b) or not a:
        raise ValueError(f"a paired comparison needs the same problems on both sides, got {len(a)} and {len(b)}")
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    low, high = _bootstrap(diff, np.random.default_rng(seed), draws)
    verdict = "beats" if low > 0 else "loses to" if high < 0 else "no difference shown against"
    return {"difference": float(diff.mean()), "interval": [low, high], "verdict": verdict}


def compare(report: dict, a: str, b: str, n: str, *, draws: int = 1000, seed: int = 0) -> dict:
    """Method `a` against method `b` at N=`n`, over the report's per-problem accuracies."""
    per = report["per_problem"]
    for m in (a, b):
        if m not in per or n not in per[m]:
            raise ValueError(f"no per-problem accuracy of {m!r} at N={n}; methods: {', '.join(per)}")
    return {"a": a, "b": b, "n": int(n), **paired_difference(per[a][n], per[b][n], draws=draws, seed=seed)}


def load_solutions(scored: str | Path, rejects: RejectLog | None = None) -> list[Solution]:
    out = []
    for lineno, rec in read_records(scored, Solution.from_dict):
        if isinstance(rec, Rejected):
            if rejects is not None:
                rejects.add(rec)
            continue
        if rec.correct is None:
            if rejects is not None:
                rejects.add(Rejected(str(scored), lineno, f"solution of {rec.problem_id!r} is not graded ('correct')"))
            continue
        out.append(rec)
    return out


@dataclass
class EvaluateConfig:
    """Settings of `mmprm evaluate` (recipe section `evaluate:`)."""

    n: list[int] = setting(factory=lambda: [1, 2, 4, 8, 16], help="candidates per problem to select among")
    subsets: int = setting(200, "random subsets of the pool per N below the pool size")
    bootstrap: int = setting(1000, "bootstrap resamples of the problems for each interval")
    seed: int = setting(0, "seeds the subsets and the bootstrap")

    def __post_init__(self) -> None:
        if not self.n or min(self.n) < 1 or self.subsets < 1 or self.bootstrap < 1:
            raise ValueError(f"need N values >= 1, subsets >= 1 and bootstrap >= 1; got {self.n}, {self.subsets}, "
                             f"{self.bootstrap}")


def evaluate_file(scored: str | Path, out_dir: str | Path, cfg: EvaluateConfig, grader: Grader, *,
                  bounded: bool | None = None, title: str = "Accuracy against N") -> dict:
    """`mmprm evaluate`: every selection method at every N over a scored file; writes
    report.json, report.md and accuracy.png to `out_dir` and returns the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rejects = RejectLog(out_dir / "scored.jsonl", echo=print)
    solutions = load_solutions(scored, rejects)
    rejects.close()
    pools = build_pools(solutions, grader, progress=True)
    report = evaluate_pools(pools, cfg.n, bounded=bounded, subsets_per_n=cfg.subsets, bootstrap=cfg.bootstrap,
                            seed=cfg.seed)
    report["counts"]["rejected"] = rejects.count
    write_report(report, out_dir, title=title)
    return report


def write_report(report: dict, out_dir: Path, *, title: str) -> None:
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown(report, title))
    from mmprm.evaluate.plot import plot_accuracy

    plot_accuracy(report, out_dir / "accuracy.png", title=title)


def comparison_lines(comparisons: list[dict]) -> list[str]:
    """One line a comparison: "A beats B at N=8: +8.4 points [3.1, 13.9]" (paired bootstrap, 95%)."""
    return [f"- {c['a']} {c['verdict']} {c['b']} at N={c['n']}: {100 * c['difference']:+.1f} points "
            f"[{100 * c['interval'][0]:+.1f}, {100 * c['interval'][1]:+.1f}]" for c in comparisons]


def markdown(report: dict, title: str) -> str:
    ns = sorted({int(n) for m in report["methods"].values() for n in m})
    lines = [f"# {title}", "", f"{report['counts']['problems']} problems, "
             f"{report['counts']['candidates']} candidates. Accuracy in %, 95% bootstrap interval in brackets.", "",
             "| method | " + " | ".join(f"N={n}" for n in ns) + " |", "|---" * (len(ns) + 1) + "|"]
    for m, by_n in report["methods"].items():
        cells = []
        for n in ns:
            if str(n) in by_n:
                lo, hi = report["intervals"][m][str(n)]
                cells.append(f"{100 * by_n[str(n)]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]")
            else:
                cells.append("–")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if report.get("comparisons"):
        lines += ["", "Paired comparisons (the same problems and subsets on both sides; difference in accuracy, "
                  "95% paired bootstrap interval; a method beats another only where the interval excludes 0):", "",
                  *comparison_lines(report["comparisons"])]
    lines += ["", *[f"- {note}" for note in report["notes"]], ""]
    return "\n".join(lines)
