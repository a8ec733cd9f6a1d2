"""The simulated teacher (ground truth plus seeded noise, a stand-in for GPT-4o) and
GM-PRM's filter (keep a critique whose first error agrees with MC)."""

from __future__ import annotations

import random

import pytest

from mmprm.critic.critique import parse
from mmprm.critic.filter import UNCHECKED, filter_critiques, mc_first_error
from mmprm.critic.teacher import SimulatedTeacher
from mmprm.data import load_problems
from mmprm.data.synth import first_wrong_step, generate_synthetic, local_step_labels
from mmprm.types import AnnotatedPath, Problem


@pytest.fixture(scope="module")
def solutions(tmp_path_factory):
    """(problem, steps) pairs: each reference, and copies with one step's number changed."""
    d = tmp_path_factory.mktemp("critic-data")
    generate_synthetic(80, 21, d, split="test", families=["bartotal", "bars"], min_steps=3, max_steps=5)
    rng = random.Random(0)
    out = []
    for p in load_problems(d / "problems.jsonl"):
        ref = [s["text"] for s in p.meta["reference_steps"]]
        out.append((p, ref))
        steps = list(ref)
        k = rng.randrange(len(steps))
        head, _, number = steps[k].rpartition(" ")
        steps[k] = f"{head} {int(number) + rng.randint(1, 5)}"
        out.append((p, steps))
    return out


def test_without_noise_the_teacher_finds_every_first_error_and_corrects_it(solutions):
    teacher = SimulatedTeacher(0.0)
    wrong = 0
    for problem, steps in solutions:
        parsed = parse(teacher.critique(problem, steps), len(steps))
        assert parsed.reason is None
        first = parsed.critique.first_error
        assert first == first_wrong_step(problem, steps)
        if first is not None:
            wrong += 1
            fixed = steps[:first] + [parsed.critique.correction]
            assert all(local_step_labels(problem, fixed))
    assert wrong >= 60


def test_the_teacher_redoes_arithmetic_in_full_beside_its_verdict(solutions):
    """A review of an arithmetic step shows the step's numbers with the right result, so a
    critic learning from it adds next to the operands rather than recalling a sum."""
    teacher = SimulatedTeacher(0.0)
    checked = 0
    for problem, steps in solutions:
        critique = SimulatedTeacher.true_critique(problem, steps)
        for step, review in zip(steps, critique.reviews):
            if review.intent == "compute" and "=" in step:
                head, _, stated = step.rpartition("= ")
                assert review.logic.startswith(head) and review.logic != step if not review.correct \
                    else review.logic == step
                verdict = "right" if review.correct else "wrong"
                assert f"| {review.logic} | {verdict}" in teacher.critique(problem, steps)
                checked += 1
    assert checked >= 20


@pytest.mark.parametrize("noise", [0.2, 0.4])
def test_noise_spoils_about_that_share_of_critiques_deterministically(solutions, noise):
    teacher = SimulatedTeacher(noise, seed=3)
    spoiled = unparsed = 0
    for problem, steps in solutions:
        text = teacher.critique(problem, steps)
        assert text == teacher.critique(problem, steps)  # seeded by the solution
        truth = SimulatedTeacher.true_critique(problem, steps)
        parsed = parse(text, len(steps))
        unparsed += parsed.critique is None
        spoiled += parsed.critique != truth
    share = spoiled / len(solutions)
    # a flipped verdict past the first error leaves the critique as it was: a little under `noise`
    assert noise - 0.08 < share <= noise + 0.08  # measured 0.14 and 0.36
    assert unparsed > 0  # dropped fields reach the parser as broken text


def counts_path(counts: list, steps: int = 3) -> AnnotatedPath:
    return AnnotatedPath.of(Problem("p", "q", "1"), [f"s{i}" for i in range(steps)], [1.0] * steps,
                            mc_counts=counts)


@pytest.mark.parametrize("counts, first", [
    ([[4, 8], [3, 8], [0, 8], [0, 1]], 1),  # the prefix through step 2 never reaches the answer
    ([[4, 8], [3, 8], [2, 8], [1, 1]], None),  # a right solution
    ([[4, 8], [3, 8], [2, 8], [0, 1]], 2),  # the outcome is graded: the last step is always trusted
    ([[4, 8], [1, 1], [0, 8], [0, 1]], 1),  # one right rollout proves step 1, however few were drawn
    ([[4, 8], [0, 1], [0, 8], [0, 1]], UNCHECKED),  # one wrong rollout cannot tell: is step 1 or 2 the error?
    ([[4, 8], None, [0, 8], [0, 1]], UNCHECKED),  # nothing proves step 1
    ([[4, 8], None, [2, 8], [0, 1]], 2),  # a right rollout after step 2 proves steps 1 and 2
])
def test_mc_first_error_reads_the_first_prefix_with_mc_zero(counts, first):
    assert mc_first_error(counts_path(counts), min_rollouts=2) == first


def test_the_filter_keeps_critiques_that_agree_with_mc_and_counts_the_rest():
    path = counts_path([[4, 8], [3, 8], [0, 8], [0, 1]])
    agree = "step 1: a | b | c | right\nstep 2: a | b | c | wrong\nfirst error: 2\ncorrection: x"
    disagree = "step 1: a | b | c | wrong\nfirst error: 1\ncorrection: x"
    broken = "step 1: a | b | c | right"
    unchecked = counts_path([[4, 8], [0, 1], [0, 8], [0, 1]])
    kept, report = filter_critiques([(path, agree), (path, disagree), (path, broken), (unchecked, agree),
                                     (path, None)])
    assert [c.first_error for _, c in kept] == [1]
    assert report.to_dict() == {"critiques": 4, "unparsed": 1, "unchecked": 1, "kept": 1, "kept_share": 0.25}
