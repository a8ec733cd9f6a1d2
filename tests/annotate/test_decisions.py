"""The binary search's question, "is this prefix still on track?", and what it costs:
curtailed draws, the sequential tests (survival, floor) with their boundaries by hand,
the floor test's depth, refilling the pool and filling prefixes on track, the unchecked
last-step blame as a setting, luck, and the runner honouring each query's count."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
from driving import drive as drive_for

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.mc import on_track, per_step_mc, sequential_test
from mmprm.annotate.omegaprm import omegaprm, right_prefix_mc, still_on_track
from mmprm.annotate.runner import annotate
from mmprm.annotate.tree import Tree
from mmprm.grading import RuleGrader
from mmprm.policy.base import Continuation, Policy
from mmprm.policy.simulated import SimulatedPolicy, true_first_error
from mmprm.types import Problem

GRADER = RuleGrader()
PROBLEM = Problem("p", "q", "40")


class Pattern(Policy):
    """Rollout j drawn from a prefix (counted across calls) is right iff `pattern[j]`."""

    name = "pattern"

    def __init__(self, pattern: list[bool]):
        self.pattern, self.drawn = pattern, Counter()

    def sample_batch(self, requests, params):
        out = []
        for r in requests:
            key = tuple(r.prefix_steps)
            conts = []
            for _ in range(params.n):
                right = self.pattern[self.drawn[key] % len(self.pattern)]
                self.drawn[key] += 1
                answer = "40" if right else "41"
                conts.append(Continuation(f"<answer>{answer}</answer>", ["s"], answer, True, 1, 1))
            out.append(conts)
        return out


def drive(gen, policy, problem=PROBLEM):
    return drive_for(gen, policy, problem)


def decide(question, pattern):
    """(answer, rollouts drawn) of a decision on a fresh state against a pattern policy."""
    tree = Tree("p")
    state = tree.insert(["a"])
    answer = drive(question(tree, state), Pattern(pattern))
    return answer, len(state.rollouts)


@pytest.mark.parametrize("wave, pattern, answer, drawn", [
    (1, [False, False, True], True, 3),  # stops at the first right rollout
    (2, [False, False, True], True, 4),  # in waves of two
    (1, [False], False, 8),  # "none right" needs all k
    (0, [False, False, True], True, 8),  # wave 0: all k at once, as MM-PRM
])
def test_curtailed_draws_stop_once_the_answer_is_settled(wave, pattern, answer, drawn):
    cfg = AnnotateConfig(k=8, wave=wave)
    assert decide(lambda t, s: on_track(t, s, PROBLEM, GRADER, cfg, 1), pattern) == (answer, drawn)


def test_needing_three_right_stops_once_three_are_right_or_three_cannot_be():
    cfg = AnnotateConfig(k=8, wave=1)
    assert decide(lambda t, s: on_track(t, s, PROBLEM, GRADER, cfg, 3), [True, False]) == (True, 5)
    assert decide(lambda t, s: on_track(t, s, PROBLEM, GRADER, cfg, 3), [False]) == (False, 6)  # 0 + 2 left < 3


@pytest.mark.parametrize("pattern, answer, drawn", [
    ([True], True, 4),  # ln 2 per right: 3 give 2.08 < ln 9 = 2.20, 4 give 2.77
    ([False], False, 3),  # ln(0.3/0.65) = -0.773 per wrong: 3 give -2.32
    ([True, False], False, 32),  # drifts by -0.04 a draw: the cap decides, on the evidence's sign
])
def test_the_sequential_test_crosses_its_boundaries_where_worked_out_by_hand(pattern, answer, drawn):
    cfg = AnnotateConfig(k=8, wave=1, decision="survival", decision_error=0.1, decision_max=32)
    assert math.log(9) == pytest.approx(2.197, abs=1e-3)
    question = lambda t, s: sequential_test(t, s, PROBLEM, GRADER, cfg, 0.7, 0.35)  # noqa: E731
    assert decide(question, pattern) == (answer, drawn)


def first_error_accuracy(cfg: AnnotateConfig, policy: SimulatedPolicy, n: int) -> tuple[float, int]:
    right = located = 0
    for i in range(n):
        problem = Problem(f"q{i}", "q", "40", meta={"n_steps": 6})
        tree, _ = drive(omegaprm(problem, GRADER, cfg), policy, problem)
        for found in tree.first_errors:
            located += 1
            right += found["first_error_step"] == true_first_error(found["steps"])
    return right / max(1, located), located


@pytest.mark.slow
def test_with_lucky_answers_the_survival_test_finds_true_first_errors_where_mc_above_zero_does_not():
    # a wrong step still reaches the answer one time in ten; the root's MC is about 0.7
    policy = SimulatedPolicy(steps=6, error=1 - ((0.7 - 0.1) / 0.9) ** (1 / 6), lucky=0.1, words=30)
    base = AnnotateConfig(k=8, max_searches=40, rollout_budget=400)
    mm_prm, located = first_error_accuracy(base, policy, 8)
    luck_aware, located_aware = first_error_accuracy(
        AnnotateConfig(**{**base.__dict__, "decision": "survival", "wave": 1, "root_k": 32}), policy, 8)
    assert located > 20 and located_aware > 20
    assert mm_prm < 0.3 and luck_aware > 0.9


def test_without_the_free_blame_every_located_error_was_checked_by_a_rollout():
    policy = SimulatedPolicy(steps=6, error=0.08, words=30)
    problem = Problem("p", "q", "40", meta={"n_steps": 6})
    for blame in (True, False):
        cfg = AnnotateConfig(k=8, max_searches=30, blame_last_step=blame)
        tree, paths = drive(omegaprm(problem, GRADER, cfg), policy, problem)
        checked = []
        for found in tree.first_errors:
            assert found["first_error_step"] == true_first_error(found["steps"])
            state = tree.find(found["steps"][: found["first_error_step"] + 1])
            checked.append(state is not None and bool(state.rollouts))
        if blame:
            assert not all(checked)  # some last steps were blamed for the wrong answer alone
        else:
            assert checked and all(checked)
            assert all(v is not None for p in paths for v in p.labels)


def test_label_completion_brings_every_estimate_that_stopped_early_to_k():
    cfg = AnnotateConfig(k=8, wave=1, max_searches=20)
    problem = Problem("p", "q", "40", meta={"n_steps": 6})
    tree, paths = drive(omegaprm(problem, GRADER, cfg), SimulatedPolicy(steps=6, error=0.1, words=30), problem)
    assert tree.label_rollouts > 0
    assert all(len(s.rollouts) >= 8 for s in tree.states if s.rollouts)
    assert paths and all(c is None or c[1] >= 8 or c == [c[0], 1] for p in paths for c in p.meta["mc_counts"])


def test_the_runner_draws_what_each_query_asks(tmp_path):
    """Per-step MC samples `num_solutions` solutions at the root, not k (the runner used to send k for all)."""
    problems = [Problem(f"q{i}", "q", "40", meta={"n_steps": 4}) for i in range(3)]
    cfg = AnnotateConfig(method="mc", k=6, num_solutions=3)
    annotate(problems, SimulatedPolicy(steps=4, error=0.2), GRADER, tmp_path, cfg, progress=False)
    for p in problems:
        tree = json.loads((tmp_path / "trees" / f"{p.id}.json").read_text())
        assert len(tree["states"][0]["rollouts"]) == 3
        assert all(len(s["rollouts"]) == 6 for s in tree["states"][1:] if s["rollouts"])
    direct = drive(per_step_mc(problems[0], GRADER, cfg), SimulatedPolicy(steps=4, error=0.2), problems[0])[0]
    assert len(direct.root.rollouts) == 3


def test_without_the_free_blame_the_traversal_still_writes_its_paths():
    policy = SimulatedPolicy(steps=4, error=[0, 0, 0, 0.5], words=5)
    for blame in (True, False):
        problem = Problem("p", "q", "40", meta={"n_steps": 4})
        cfg = AnnotateConfig(k=8, max_searches=20, blame_last_step=blame)
        tree, paths = drive(omegaprm(problem, GRADER, cfg), policy, problem)
        assert paths, blame
        assert all(s.mc is not None for s in tree.states)


@pytest.mark.parametrize("floor, error, pattern, answer, drawn", [
    (0.0, 0.01, [True], True, 1),  # floor 0: one right rollout settles "on track"
    (0.0, 0.01, [False, False, True], True, 3),
    (0.0, 0.01, [False], False, 4),  # ln 0.3 = -1.204 per wrong: 3 give -3.61 > -ln 99 = -4.60, 4 give -4.82
    (0.05, 0.005, [True], True, 3),  # ln 14 = 2.639 per right: 2 give 5.28 < ln 199 = 5.293
    (0.05, 0.005, [False], False, 5),  # ln(0.3/0.95) = -1.153 per wrong: 4 give -4.61, 5 give -5.76
])
def test_the_floor_test_crosses_its_boundaries_where_worked_out_by_hand(floor, error, pattern, answer, drawn):
    cfg = AnnotateConfig(k=8, wave=1, decision="floor", decision_error=error)
    question = lambda t, s: sequential_test(t, s, PROBLEM, GRADER, cfg, 0.7, floor)  # noqa: E731
    assert decide(question, pattern) == (answer, drawn)


def test_under_the_floor_test_a_prefix_near_the_end_is_judged_wrong_on_fewer_failures():
    """A right prefix keeps root MC ^ (steps left / steps): 0.7 ^ (3/4) = 0.765 one step in,
    0.7 ^ (1/4) = 0.915 one step from the end, so all-wrong rollouts say "wrong" sooner there."""
    assert right_prefix_mc(0.7, 1, 4) == pytest.approx(0.765, abs=1e-3)
    assert right_prefix_mc(0.7, 3, 4) == pytest.approx(0.915, abs=1e-3)
    cfg = AnnotateConfig(k=8, wave=1, decision="floor", floor=0.0, decision_error=0.01)
    drawn = {}
    for depth in (1, 3):
        tree = Tree("p")
        state = tree.insert(["a"] * depth)
        answer = drive(still_on_track(tree, state, 0.7, PROBLEM, GRADER, cfg, steps=4), Pattern([False]))
        drawn[depth] = (answer, len(state.rollouts))
    assert drawn == {1: (False, 4), 3: (False, 2)}  # ln 0.235 = -1.45 a failure there, ln 0.085 = -2.46 here


def test_refill_draws_more_root_rollouts_when_the_pool_runs_dry():
    policy = SimulatedPolicy(steps=4, error=0.05, words=30)  # root MC about 0.8: few wrong root rollouts
    problem = Problem("p", "q", "40", meta={"n_steps": 4})
    base = AnnotateConfig(k=8, wave=1, decision="floor", floor=0.0, decision_error=0.01, max_searches=20,
                          rollout_budget=400)
    dry, _ = drive(omegaprm(problem, GRADER, base), policy, problem)
    refilled, _ = drive(omegaprm(problem, GRADER, AnnotateConfig(**{**base.__dict__, "refill": 8})), policy, problem)
    assert len(dry.root.rollouts) == 8 and dry.searches < 20
    assert len(refilled.root.rollouts) > 8 and refilled.searches == 20
    for found in refilled.first_errors:
        assert found["first_error_step"] == true_first_error(found["steps"])


@pytest.mark.parametrize("fill_below, all_full", [(1.0, True), (0.0, False)])
def test_fill_below_draws_prefixes_found_on_track_up_to_k(fill_below, all_full):
    policy = SimulatedPolicy(steps=6, error=0.2, words=30)  # root MC about 0.26
    problem = Problem("p", "q", "40", meta={"n_steps": 6})
    cfg = AnnotateConfig(k=8, wave=1, decision="floor", floor=0.0, decision_error=0.01, max_searches=20,
                         fill_below=fill_below, complete_labels=False)
    tree, _ = drive(omegaprm(problem, GRADER, cfg), policy, problem)
    on_track_states = [s for s in tree.states[1:] if any(r.correct for r in s.rollouts)]
    assert on_track_states
    assert all(len(s.rollouts) >= 8 for s in on_track_states) == all_full


def located_per_rollout(cfg: AnnotateConfig, policy: SimulatedPolicy, n: int, steps: int) -> tuple[float, float]:
    """(first errors located per rollout, the share that are true first errors) over n problems."""
    right = located = rollouts = 0
    for i in range(n):
        problem = Problem(f"q{i}", "q", "40", meta={"n_steps": steps})
        tree, _ = drive(omegaprm(problem, GRADER, cfg), policy, problem)
        rollouts += tree.rollouts
        for found in tree.first_errors:
            located += 1
            right += found["first_error_step"] == true_first_error(found["steps"])
    return located / rollouts, right / max(1, located)


FLOOR = dict(wave=1, decision="floor", floor=0.05, decision_error=0.005, fill_below=0.5, refill=8,
             complete_labels=False)


def test_without_luck_the_floor_test_locates_more_first_errors_per_rollout_than_mm_prms_rule():
    # root MC about 0.7, where MM-PRM's rule pays most for its "wrong" verdicts (about 1.6x on the benchmark)
    policy = SimulatedPolicy(steps=8, error=1 - 0.7 ** (1 / 8), words=30)
    base = AnnotateConfig(k=8, max_searches=60, rollout_budget=300)
    mm_prm, mm_prm_accuracy = located_per_rollout(base, policy, 4, 8)
    floor, floor_accuracy = located_per_rollout(AnnotateConfig(**{**base.__dict__, **FLOOR}), policy, 4, 8)
    assert mm_prm_accuracy == 1.0 and floor_accuracy > 0.98
    assert floor > 1.5 * mm_prm


@pytest.mark.slow
def test_with_lucky_answers_the_floor_test_still_finds_true_first_errors():
    # a wrong step still reaches the answer one time in ten; the root's MC is about 0.7
    policy = SimulatedPolicy(steps=6, error=1 - ((0.7 - 0.1) / 0.9) ** (1 / 6), lucky=0.1, words=30)
    cfg = AnnotateConfig(k=8, max_searches=40, rollout_budget=400, **FLOOR)
    _, accuracy = located_per_rollout(cfg, policy, 8, 6)
    assert accuracy > 0.9


def test_floor_and_fill_settings_are_checked():
    for bad in (dict(floor=1.0), dict(floor=-0.1), dict(fill_below=1.5), dict(refill=-1)):
        with pytest.raises(ValueError):
            AnnotateConfig(**bad)
