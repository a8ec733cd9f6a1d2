import json

import numpy as np
import pytest

from mmprm.aggregate import aggregate, to_weight
from mmprm.evaluate.report import EvaluateConfig, build_pools, evaluate_file, evaluate_pools
from mmprm.grading import RuleGrader
from mmprm.search.select import best_of_n, pass_at_k, vote
from mmprm.types import Solution


def sol(pid, answer, correct, scores):
    return Solution(pid, ["s"] * len(scores), answer, correct, scores)


FIXTURE = [
    # A: the majority is right, the top-scored candidate is wrong, one candidate has no answer
    sol("A", "12", True, [0.9, 0.8]), sol("A", "12.0", True, [0.9, 0.3]),
    sol("A", "7", False, [0.95, 0.9]), sol("A", None, False, [0.2]),
    # B: every candidate wrong
    sol("B", "1", False, [0.9]), sol("B", "2", False, [0.8]), sol("B", "3", False, [0.7]),
    sol("B", "1", False, [0.1]),
    # C: a perfect tie between a right and a wrong answer
    sol("C", "5", True, [0.5]), sol("C", "6", False, [0.5]),
    # D: a single candidate
    sol("D", "\\frac{1}{2}", True, [0.4]),
]


@pytest.fixture(scope="module")
def report():
    pools = build_pools(FIXTURE, RuleGrader())
    return evaluate_pools(pools, [1, 2, 4], subsets_per_n=50, bootstrap=200)


def test_full_pool_values_match_hand_computation(report):
    m = report["methods"]
    # N=4: problems A and B only
    assert m["random"]["4"] == pytest.approx((0.5 + 0.0) / 2)
    assert m["majority"]["4"] == pytest.approx((1.0 + 0.0) / 2)   # "12" and "12.0" vote together
    assert m["pass@k"]["4"] == pytest.approx((1.0 + 0.0) / 2)
    assert m["bon_min"]["4"] == pytest.approx(0.0)                 # picks "7" (min 0.9)
    assert m["bon_last"]["4"] == pytest.approx(0.0)
    assert m["weighted_min"]["4"] == pytest.approx((1.0 + 0.0) / 2)  # 0.8 + 0.3 > 0.9
    assert report["counts"]["problems_per_n"] == {"1": 4, "2": 3, "4": 2}


def test_ties_split_evenly_and_single_candidates(report):
    m = report["methods"]
    # N=2 holds C's whole pool (tie: 0.5 for every method); A and B are subset means
    pools = build_pools(FIXTURE, RuleGrader())
    one = evaluate_pools([p for p in pools if p.problem_id == "C"], [2])["methods"]
    for method in ("majority", "bon_min", "weighted_min", "random"):
        assert one[method]["2"] == pytest.approx(0.5)
    assert one["pass@k"]["2"] == 1.0
    alone = evaluate_pools([p for p in pools if p.problem_id == "D"], [1])["methods"]
    assert all(v["1"] == 1.0 for v in alone.values())
    assert m["pass@k"]["2"] == pytest.approx((pass_at_k(4, 2, 2) + 0 + 1) / 3)


def test_intervals_bracket_the_mean(report):
    for method, by_n in report["methods"].items():
        for n, acc in by_n.items():
            lo, hi = report["intervals"][method][n]
            assert lo - 1e-9 <= acc <= hi + 1e-9


def test_primitives():
    values = np.array([[0.3, 0.9, 0.9], [0.1, 0.2, 0.3]])
    correct = np.array([[True, True, False], [False, False, True]])
    assert best_of_n(values, correct).tolist() == [0.5, 1.0]
    groups = np.array([[0, 1, -1]])
    assert vote(groups, np.ones((1, 3)), np.array([True, False])).tolist() == [0.5]
    assert vote(np.array([[-1, -1]]), np.ones((1, 2)), np.array([], dtype=bool)).tolist() == [0.0]
    assert pass_at_k(10, 0, 3) == 0.0 and pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(5, 1, 1) == pytest.approx(0.2)
    assert aggregate([0.5, 0.2], "product") == pytest.approx(0.1)
    assert aggregate([0.5, 0.5], "sum_logit") == pytest.approx(0.0)
    assert aggregate([-3.0, 2.0], "product", bounded=False) == pytest.approx(1 / (1 + np.e ** 3) / (1 + np.e ** -2))
    assert aggregate([], "min") == -np.inf and to_weight(-np.inf, "min", bounded=True) == 0.0
    assert 0 < to_weight(-5.0, "min", bounded=False) < 0.01
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate([0.1], "median")


def test_unbounded_scores_are_said_to_be_read_as_logits():
    pools = build_pools([sol("A", "1", True, [-2.0, 3.0]), sol("A", "2", False, [-4.0])], RuleGrader())
    report = evaluate_pools(pools, [2])
    assert any("read as logits" in n for n in report["notes"])
    assert report["methods"]["bon_min"]["2"] == 1.0


def test_evaluate_file_writes_the_report(tmp_path):
    scored = tmp_path / "scored.jsonl"
    rows = [s.to_dict() for s in FIXTURE] + [{"problem_id": "E", "steps": ["x"]}, {"bad": 1}]
    scored.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = evaluate_file(scored, tmp_path / "out", EvaluateConfig(n=[1, 2, 4], subsets=20), RuleGrader())
    assert report["counts"]["rejected"] == 2
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["methods"]["majority"]["4"] == pytest.approx(0.5)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| majority |" in md and "Ties are split evenly" in md
    png = (tmp_path / "out" / "accuracy.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_paired_comparison_sees_a_difference_that_separate_intervals_hide():
    from mmprm.evaluate.report import _bootstrap, paired_difference

    rng = np.random.default_rng(0)
    b = (rng.random(200) < 0.5).astype(float)
    a = b.copy()
    a[np.flatnonzero(b == 0)[:10]] = 1.0  # method a fixes 10 of b's misses and breaks nothing
    lo_a, _ = _bootstrap(a, np.random.default_rng(1), 1000)
    _, hi_b = _bootstrap(b, np.random.default_rng(2), 1000)
    assert lo_a < hi_b  # the two separate intervals overlap ...
    paired = paired_difference(list(a), list(b), seed=3)
    assert paired["difference"] == pytest.approx(0.05) and paired["interval"][0] > 0  # ... the paired one does not
    assert paired["verdict"] == "beats"
    assert paired_difference(list(b), list(a), seed=3)["verdict"] == "loses to"
    assert paired_difference(list(b), list(b))["verdict"] == "no difference shown against"
    with pytest.raises(ValueError, match="same problems"):
        paired_difference([1.0], [1.0, 0.0])


def test_the_report_compares_each_prm_method_with_majority_over_the_same_problems():
    pools = build_pools(FIXTURE, RuleGrader())
    report = evaluate_pools(pools, [1, 2], subsets_per_n=50, bootstrap=200)
    pairs = {(c["a"], c["b"]) for c in report["comparisons"]}
    assert ("bon_min", "majority") in pairs and ("majority", "random") in pairs
    c = next(c for c in report["comparisons"] if (c["a"], c["b"]) == ("bon_min", "majority"))
    assert c["n"] == 2
    assert c["difference"] == pytest.approx(report["methods"]["bon_min"]["2"] - report["methods"]["majority"]["2"])


def test_selection_below_the_pool_size_matches_brute_force_over_every_subset():
    """Expected values by enumerating every N-subset, independent of the code under test."""
    from itertools import combinations

    correct = [True, False, False, True, False, False]
    answers = ["7", "8", "8", "7", "9", "8"]
    scores = [[0.9], [0.95], [0.2], [0.4], [0.1], [0.3]]  # the top-scored candidate is wrong
    pools = build_pools([sol("P", a, c, s) for a, c, s in zip(answers, correct, scores)], RuleGrader())
    report = evaluate_pools(pools, [1, 2, 3, 6], subsets_per_n=20000, bootstrap=50, seed=1)

    def brute(n, pick):
        subs = list(combinations(range(6), n))
        return sum(pick(s) for s in subs) / len(subs)

    def best(s):
        return float(correct[max(s, key=lambda i: scores[i][0])])

    def majority(s):
        counts = {}
        for i in s:
            counts[answers[i]] = counts.get(answers[i], 0) + 1
        top = max(counts.values())
        winners = [a for a, c in counts.items() if c == top]
        return sum(a == "7" for a in winners) / len(winners)  # ties split evenly

    for n in (1, 2, 3):
        m = report["methods"]
        assert m["random"][str(n)] == pytest.approx(brute(n, lambda s: sum(correct[i] for i in s) / len(s)), abs=0.01)
        assert m["bon_max"][str(n)] == pytest.approx(brute(n, best), abs=0.01)
        assert m["majority"][str(n)] == pytest.approx(brute(n, majority), abs=0.01)
        assert m["pass@k"][str(n)] == pytest.approx(brute(n, lambda s: float(any(correct[i] for i in s))))
