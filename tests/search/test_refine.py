"""Refined Best-of-N with a scripted policy, critic and PRM whose behaviour is known:
which prefixes are continued, what the candidates are, the tokens, the control, and
the runner's settings and report."""

from __future__ import annotations

import json

import pytest

from mmprm.critic.base import Critic, Review, load_critic
from mmprm.critic.critique import Critique, ParsedCritique, StepReview
from mmprm.grading import RuleGrader
from mmprm.policy.base import Continuation, Policy
from mmprm.prm.base import PRM
from mmprm.search.refine import refined_best_of_n
from mmprm.search.runner import run_search
from mmprm.search.tree_search import SearchConfig
from mmprm.types import Problem

PROBLEM = Problem("p", "q", "42")


class Scripted(Policy):
    """From scratch: "a", "slip" and a wrong answer. After "fix": the right answer. After
    anything else: "slip" again and a wrong answer. Tokens: 3 a step, 1 for the answer."""

    name = "scripted"

    def __init__(self):
        self.prefixes = []

    def sample_batch(self, requests, params):
        out = []
        for r in requests:
            self.prefixes.append(list(r.prefix_steps))
            if r.prefix_steps and r.prefix_steps[-1] == "fix":
                steps, answer = [], "42"
            elif r.prefix_steps:
                steps, answer = ["slip"], "7"
            else:
                steps, answer = ["a", "slip"], "7"
            out.append([Continuation("", steps, answer, True, 5, 3 * len(steps) + 1) for _ in range(params.n)])
        return out


class BlamesStep2(Critic):
    name = "blames step 2"

    def __init__(self, finds: bool = True):
        self.finds, self.seen = finds, []

    def review_many(self, items):
        return [Review(None, ParsedCritique(self._critique(steps)), completion_tokens=11) for _, steps in items]

    def _critique(self, steps):
        self.seen.append(list(steps))
        ok = StepReview("i", "v", "l", True)
        if not self.finds:
            return Critique((ok,) * len(steps), None)
        return Critique((ok, StepReview("i", "v", "l", False)), 1, "fix")


class LengthPRM(PRM):
    name = "length"

    def score(self, problem, candidates):
        return [[1.0 / (1 + len(steps))] * len(steps) for steps in candidates]


def test_each_first_sample_is_continued_from_its_corrected_first_error():
    policy, critic = Scripted(), BlamesStep2()
    (result,) = refined_best_of_n([PROBLEM], policy, LengthPRM(), SearchConfig(method="refined", n=8),
                                  critic=critic)
    assert [c.steps for c in result.candidates] == [["a", "slip"]] * 4 + [["a", "fix"]] * 4
    assert [c.answer for c in result.candidates] == ["7"] * 4 + ["42"] * 4
    assert policy.prefixes == [[]] + [["a", "fix"]] * 4  # one call for the first half, one request per refinement
    assert critic.seen == [["a", "slip"]]  # the four identical solutions are reviewed once
    assert result.tokens == 4 * 7 + 4 * 1
    assert result.critic_tokens == 11  # counted apart from the policy's, once per reviewed solution
    assert all(len(c.step_scores) == len(c.steps) for c in result.candidates)


def test_the_control_continues_from_the_same_prefix_without_the_correction():
    policy = Scripted()
    cfg = SearchConfig(method="refined", n=8, correction=False)
    (result,) = refined_best_of_n([PROBLEM], policy, LengthPRM(), cfg, critic=BlamesStep2())
    assert [c.steps for c in result.candidates[4:]] == [["a", "slip"]] * 4
    assert policy.prefixes[1:] == [["a"]] * 4


def test_solutions_the_critic_passes_are_answered_by_fresh_samples_and_the_share_is_kept():
    policy = Scripted()
    cfg = SearchConfig(method="refined", n=8, refine_share=0.25)
    (result,) = refined_best_of_n([PROBLEM], policy, LengthPRM(), cfg, critic=BlamesStep2(finds=False))
    assert len(result.candidates) == 8
    assert policy.prefixes == [[]] + [[]] * 6  # 2 first, then 6 fresh (none refined: no error found)


def test_the_runner_needs_a_critic_records_its_name_and_reports_refined_selection(tmp_path):
    cfg = SearchConfig(method="refined", n=4)
    with pytest.raises(ValueError, match="needs a critic"):
        run_search([PROBLEM], Scripted(), LengthPRM(), RuleGrader(), cfg, tmp_path / "none", progress=False)
    report = run_search([PROBLEM], Scripted(), LengthPRM(), RuleGrader(), cfg, tmp_path / "out", progress=False,
                        critic=BlamesStep2())
    assert json.loads((tmp_path / "out" / "config.json").read_text())["critic"] == "blames step 2"
    # every candidate has 2 steps, so the PRM ties them all; ties split evenly: 2 right of 4
    assert report["accuracy"]["refined_min"] == pytest.approx(0.5)
    assert report["accuracy"]["any_correct"] == 1.0
    assert report["critic_tokens_per_problem"] == 11


@pytest.mark.parametrize("spec, message", [("sim:x", "must be a number"), ("gpt", "is not oracle"),
                                           ("chat:http://h", "is not oracle")])
def test_bad_critic_specs_say_the_form(spec, message):
    with pytest.raises(ValueError, match=message):
        load_critic(spec)
