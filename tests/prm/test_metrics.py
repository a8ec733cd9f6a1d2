"""Ranking metrics: AUROC with ties, within-problem AUROC, pooled step AUROC."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmprm.aggregate import aggregate
from mmprm.prm.metrics import auroc, step_auroc, within_problem_auroc


def test_auroc_counts_ties_as_half():
    assert auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc([0.1, 0.2], [True, True]) is None


def test_within_problem_auroc_averages_problems_with_both_classes():
    ids = ["a", "a", "a", "b", "b", "c"]
    scores = [[0.9, 0.8], [0.9, 0.1], [0.7], [0.2], [0.6], [0.5]]
    correct = [True, False, True, True, False, True]
    # a: min scores 0.8, 0.1, 0.7 -> 1.0; b: 0.2 vs 0.6 -> 0.0; c has one class
    assert within_problem_auroc(ids, scores, correct) == (0.5, 2)
    # last-step aggregation: a: 0.8, 0.1, 0.7 -> 1.0 as well
    assert within_problem_auroc(ids, scores, correct, how="last") == (0.5, 2)


def test_step_auroc_skips_undecided_steps():
    assert step_auroc([[0.9, 0.1], [0.8, 0.7]], [[True, False], [None, True]]) == 1.0
    with pytest.raises(ValueError):
        step_auroc([[0.9]], [[True, False]])


def test_ranking_metrics_aggregate_as_selection_does():
    """One aggregation for metrics, selection and search: an empty solution ranks
    below every real one, also for unbounded scores such as log-likelihoods."""
    assert [aggregate([0.5, 0.8], h) for h in ("min", "last", "mean", "product")] == [0.5, 0.8, 0.65, 0.4]
    ids, correct = ["a", "a", "a"], [True, False, False]
    log_probs = [[-0.1, -0.2], [-3.0, -0.5], []]  # the empty, wrong solution must not rank first
    assert within_problem_auroc(ids, log_probs, correct) == (1.0, 1)
    # unbounded scores are read as logits by product, as in selection
    assert within_problem_auroc(ids, [[2.0], [-1.0], [0.5]], correct, how="product") == (1.0, 1)


def test_report_and_search_agree_on_which_answer_group_is_right():
    import numpy as np

    from mmprm.aggregate import group_is_correct

    assert group_is_correct(np.array([True, True, False])) and not group_is_correct(np.array([True, False]))
    for module in ("evaluate/report.py", "search/runner.py"):
        text = (Path(__file__).resolve().parents[2] / "src" / "mmprm" / module).read_text()
        assert "group_is_correct(correct[groups == g])" in text, module


def test_scored_file_summary(synth, tmp_path):
    import json

    from mmprm.prm.metrics import scored_summary

    rows = [json.loads(line) for line in (synth / "test" / "samples.jsonl").read_text().splitlines()][:40]
    for r in rows:  # a perfect scorer: 1 for the reference, 0 on corrupted steps
        r["step_scores"] = [1.0 if r["correct"] else 0.0] * len(r["steps"])
    path = tmp_path / "scored.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = scored_summary(path, synth / "test" / "problems.jsonl")
    assert summary["solutions"] == 40 and summary["problems_ranked"] == 10
    assert summary["within_problem_auroc_min"] == 1.0
    assert 0.5 < summary["step_auroc_local"] < 1.0  # right steps of corrupted solutions score 0 too


def test_first_error_f1_is_reported_on_the_held_out_half():
    """Both halves rank the steps right, but on different scales: the threshold fitted on the
    calibration half misreads the other, so the held-out F1 is 0 where the calibration F1 is 1."""
    from mmprm.prm.metrics import first_error_f1
    from mmprm.seeds import derive_seed
    from mmprm.types import Solution

    sols, verdicts = [], []
    for i in range(40):
        calibrates = derive_seed(0, f"p{i}") % 2 == 0  # the documented split: by problem, a seeded half
        wrong = i % 2 == 1
        high = [0.9, 0.1] if wrong else [0.9, 0.9]
        low = [0.4, 0.05] if wrong else [0.4, 0.4]
        sols.append(Solution(f"p{i}", ["a", "b"], "1", not wrong, high if calibrates else low))
        verdicts.append([True, False] if wrong else [True, True])
    assert first_error_f1(sols, verdicts)["first_error_f1"] == 0.0


def test_vote_weights_of_an_empty_solution_are_zero():
    import math

    from mmprm.aggregate import to_weight

    assert to_weight(-math.inf, "min", bounded=True) == 0.0
    assert to_weight(0.7, "min", bounded=True) == 0.7 and to_weight(0.0, "sum_logit", bounded=True) == 0.5
