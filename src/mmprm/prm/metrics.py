"""Ranking metrics for step scores.

Selection needs a PRM to rank the candidates of one problem, so the headline
number is the within-problem AUROC; the pooled step-level AUROC mixes
problems and mostly measures how hard each problem is. Solution scores come
from mmprm.aggregate, as in selection and search.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from mmprm.aggregate import aggregate, scores_are_bounded


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(score of a random positive > score of a random negative), ties counting half;
    None when one class is absent."""
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores for {len(labels)} labels")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):  # average ranks over ties
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return None
    rank_sum = sum(r for r, y in zip(ranks, labels) if y)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def within_problem_auroc(problem_ids: Sequence[str], step_scores: Sequence[Sequence[float]],
                         correct: Sequence[bool], *, how: str = "min",
                         bounded: bool | None = None) -> tuple[float | None, int]:
    """Mean over problems with both right and wrong candidates of the AUROC of
    aggregated solution scores (mmprm.aggregate; `bounded` read from the scores when
    None) against correctness; also the number of such problems."""
    if bounded is None:
        bounded = scores_are_bounded(step_scores)
    groups: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for pid, scores, ok in zip(problem_ids, step_scores, correct, strict=True):
        groups[pid].append((aggregate(scores, how, bounded=bounded), bool(ok)))
    values = [a for g in groups.values() if (a := auroc([s for s, _ in g], [y for _, y in g])) is not None]
    return (sum(values) / len(values) if values else None), len(values)


def step_auroc(step_scores: Sequence[Sequence[float]], step_labels: Sequence[Sequence[bool | None]]) -> float | None:
    """Pooled AUROC of every labelled step's score against its label (None labels skipped)."""
    flat = [(s, bool(y)) for ss, ys in zip(step_scores, step_labels, strict=True)
            for s, y in zip(ss, ys, strict=True) if y is not None]
    return auroc([s for s, _ in flat], [y for _, y in flat])


def scored_summary(scored_path, problems_path=None, *, how: str = "min") -> dict:
    """Ranking figures of a scored samples file (`mmprm score` output): within-problem
    AUROC against `correct`, and with `problems_path` the pooled step AUROC against local
    step labels (ground truth on synthetic problems, the arithmetic check elsewhere)."""
    from mmprm.io import load_records
    from mmprm.types import Solution

    sols = [s for s in load_records(scored_path, Solution.from_dict)
            if s.step_scores is not None and s.correct is not None]
    within, n = within_problem_auroc([s.problem_id for s in sols], [s.step_scores for s in sols],
                                     [s.correct for s in sols], how=how)
    out = {"solutions": len(sols), "problems_ranked": n, f"within_problem_auroc_{how}": within}
    if problems_path is not None:
        from mmprm.data import load_problems
        from mmprm.labels import reference_verdicts

        problems = {p.id: p for p in load_problems(problems_path, check_images=False)}
        kept = [s for s in sols if s.problem_id in problems]
        labels = [reference_verdicts(problems[s.problem_id], s.steps) for s in kept]
        out["step_auroc_local"] = step_auroc([s.step_scores for s in kept], labels)
        out.update(first_error_f1(kept, labels))
    return out


def first_error_f1(solutions, verdicts: Sequence[Sequence[bool | None]], *, seed: int = 0) -> dict:
    """ProcessBench's F1 on scored samples: the predicted first error (the first step
    scored below a threshold) against the checker's first wrong step on wrong answers
    and "no error" on right ones. The threshold is chosen for F1 on the problems of a
    seeded half and reported on the other half, so scorers on any scale compare fairly."""
    from mmprm.seeds import derive_seed

    cases = []
    for sol, v in zip(solutions, verdicts, strict=True):
        wrong = next((i for i, ok in enumerate(v) if ok is False), None)
        if sol.correct:
            cases.append((sol, -1))
        elif wrong is not None:  # a wrong answer the checker cannot place is left out
            cases.append((sol, wrong))
    calib = [derive_seed(seed, sol.problem_id) % 2 == 0 for sol, _ in cases]
    threshold = choose_threshold([c.step_scores for (c, _), k in zip(cases, calib) if k],
                                 [y for (_, y), k in zip(cases, calib) if k])
    held = [case for case, k in zip(cases, calib) if not k]
    metrics = processbench_metrics([predict_first_error(c.step_scores, threshold) for c, _ in held],
                                   [y for _, y in held])
    return {"first_error_f1": metrics["f1"], "first_error_threshold": threshold}


def predict_first_error(scores: list[float], threshold: float) -> int:
    return next((i for i, s in enumerate(scores) if s < threshold), -1)


def processbench_metrics(predicted: list[int], labels: list[int]) -> dict:
    pred, gold = np.asarray(predicted), np.asarray(labels)
    erroneous, correct = gold >= 0, gold < 0
    error_acc = float((pred[erroneous] == gold[erroneous]).mean()) if erroneous.any() else float("nan")
    correct_acc = float((pred[correct] == -1).mean()) if correct.any() else float("nan")
    f1 = 0.0 if error_acc + correct_acc == 0 else 2 * error_acc * correct_acc / (error_acc + correct_acc)
    return {"error_acc": error_acc, "correct_acc": correct_acc, "f1": float(f1),
            "erroneous": int(erroneous.sum()), "correct": int(correct.sum())}


def choose_threshold(all_scores: list[list[float]], labels: list[int]) -> float:
    """The threshold with the best F1: candidates are midpoints between the
    distinct scores (plus both ends)."""
    values = np.unique(np.concatenate([np.asarray(s, dtype=float) for s in all_scores if s] or [np.zeros(1)]))
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    if len(candidates) > 400:  # keep the search cheap on big sets
        candidates = np.quantile(candidates, np.linspace(0, 1, 400))
    best, best_f1 = 0.5, -1.0
    for t in candidates:
        f1 = processbench_metrics([predict_first_error(s, t) for s in all_scores], labels)["f1"]
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best
