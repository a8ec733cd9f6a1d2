"""Step-level search with a scripted policy and PRM whose best path is known."""

import json

import pytest

from mmprm.grading import RuleGrader
from mmprm.policy.base import Continuation, Policy
from mmprm.prm.base import PRM
from mmprm.search.runner import run_search
from mmprm.search.tree_search import SearchConfig, step_search
from mmprm.types import Problem

OPTIONS = 4


class ScriptedPolicy(Policy):
    """At depth d, sample i proposes step "d<d>-opt<i % 4>". After the last
    step it answers: right only if every step was the target option."""

    def sample_batch(self, requests, params):
        out = []
        for r in requests:
            target = r.problem.meta["target"]
            d = len(r.prefix_steps)
            conts = []
            for i in range(params.n):
                if d == len(target):
                    right = all(s == f"d{k}-opt{t}" for k, (s, t) in enumerate(zip(r.prefix_steps, target)))
                    answer = r.problem.answer if right else "0"
                    conts.append(Continuation(f"<answer>{answer}</answer>", [], answer, True, 5, 3))
                else:
                    step = f"d{d}-opt{i % OPTIONS}"
                    conts.append(Continuation(f"<step>{step}</step>", [step], None, False, 5, 4))
            out.append(conts)
        return out


class ScriptedPRM(PRM):
    """The target option scores `good`, any other `bad` (per problem)."""

    def __init__(self):
        self.calls = 0

    def score(self, problem, candidates):
        self.calls += 1
        target, good, bad = problem.meta["target"], problem.meta["good"], problem.meta["bad"]
        return [[good if s == f"d{k}-opt{target[k]}" else bad for k, s in enumerate(steps)]
                for steps in candidates]


def problem(pid, target, good=0.9, bad=0.2):
    return Problem(pid, "q", "42", meta={"target": target, "good": good, "bad": bad})


@pytest.mark.parametrize("method", ["beam", "dvts", "greedy"])
def test_search_finds_the_known_best_path(method):
    p = problem("a", [2, 0, 3, 1])
    # n=16, width=4: every beam sees all four options; "min" ranks a partial path by its worst step
    cfg = SearchConfig(method=method, n=16, width=4, aggregation="min")
    [result] = step_search([p], ScriptedPolicy(), ScriptedPRM(), cfg)
    finished = [c for c in result.candidates if c.finished]
    best = max(finished, key=lambda c: c.value)
    assert best.steps == ["d0-opt2", "d1-opt0", "d2-opt3", "d3-opt1"] and best.answer == "42"
    assert best.step_scores == [0.9] * 4
    assert {tuple(c.steps) for c in finished if c.value == best.value} == {tuple(best.steps)}
    if method == "greedy":  # one beam, 16 samples a round: 4 rounds of 4-token steps, then 16 3-token answers
        assert result.tokens == 4 * 16 * 4 + 16 * 3


def test_beams_are_never_pooled_across_problems():
    # Every candidate of "low" scores below every candidate of "high": a pooled
    # top-k would starve "low". Kept per problem, both find their best path.
    high, low = problem("high", [1, 1, 1], good=0.95, bad=0.6), problem("low", [3, 0, 2], good=0.5, bad=0.1)
    cfg = SearchConfig(method="beam", n=8, width=2, aggregation="min")
    results = step_search([high, low], ScriptedPolicy(), ScriptedPRM(), cfg)
    for r in results:
        assert any(c.finished and c.answer == "42" for c in r.candidates), r.problem.id


def test_unfinished_beams_are_reported_at_max_depth():
    [result] = step_search([problem("deep", [0] * 6)], ScriptedPolicy(), ScriptedPRM(),
                           SearchConfig(method="beam", n=4, width=2, max_depth=3))
    assert result.candidates and all(not c.finished and len(c.steps) == 3 for c in result.candidates)


def test_run_search_reports_accuracy_and_tokens_and_resumes(tmp_path):
    problems = [problem(f"p{i}", [i % 4, (i + 1) % 4, 2]) for i in range(5)]
    cfg = SearchConfig(method="beam", n=8, width=2, aggregation="min")
    report = run_search(problems[:3], ScriptedPolicy(), ScriptedPRM(), RuleGrader(), cfg, tmp_path, chunk=2,
                        progress=False)
    assert report["accuracy"]["beam_last"] == 1.0 and report["problems"] == 3
    prm = ScriptedPRM()
    report = run_search(problems, ScriptedPolicy(), prm, RuleGrader(), cfg, tmp_path, chunk=2, progress=False)
    assert report["problems"] == 5 and report["accuracy"]["beam_min"] == 1.0
    assert report["tokens_per_problem"] > 0
    ids = [json.loads(x)["id"] for x in (tmp_path / "done.jsonl").read_text().splitlines()]
    assert sorted(ids) == [f"p{i}" for i in range(5)]
    bon = run_search(problems, ScriptedPolicy(), ScriptedPRM(), RuleGrader(), SearchConfig(method="bon", n=8),
                     tmp_path / "bon", progress=False)
    assert bon["accuracy"]["any_correct"] == 0.0  # whole samples never hit the 1-in-64 path here
    assert bon["tokens_per_problem"] == 8 * 4  # 8 whole samples, each cut after its first 4-token step


def test_bad_method():
    with pytest.raises(ValueError, match="unknown search method"):
        SearchConfig(method="mcts").shape()
