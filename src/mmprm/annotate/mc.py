"""Monte-Carlo estimates of prefixes, and per-step MC annotation (Math-Shepherd).

Algorithms here are generators: they `yield` an `MCQuery` (a prefix and how
many rollouts) and receive the policy's continuations back. The runner
batches the queries of many problems into one policy call, so the algorithm
never holds a policy and runs the same against any backend.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.tree import Rollout, State, Tree, state_counts
from mmprm.grading import Grader
from mmprm.policy.base import Continuation
from mmprm.seeds import derive_seed
from mmprm.types import AnnotatedPath, Problem


@dataclass
class MCQuery:
    prefix: list[str]
    k: int
    seed: int


Annotation = Generator[MCQuery, list[Continuation], tuple[Tree, list[AnnotatedPath]]]


def estimate(tree: Tree, state: State, problem: Problem, grader: Grader, cfg: AnnotateConfig,
             ) -> Generator[MCQuery, list[Continuation], float]:
    """MC(state) = the fraction of k rollouts from its prefix that reach the
    reference answer. Cached: a state is estimated once; one that `on_track`
    left with fewer than k rollouts is drawn up to k; one given its MC without
    rollouts (a wrong rollout's end) keeps it."""
    if state.mc is not None and (not state.rollouts or len(state.rollouts) >= cfg.k):
        return state.mc
    yield from draw(tree, state, problem, grader, cfg, cfg.k - len(state.rollouts))
    return state.mc


def on_track(tree: Tree, state: State, problem: Problem, grader: Grader, cfg: AnnotateConfig, needed: int,
             ) -> Generator[MCQuery, list[Continuation], bool]:
    """Whether at least `needed` of k rollouts from the state reach the answer. Drawn
    in waves of `cfg.wave` (0: all k at once) and stopped as soon as the answer is
    settled: one right rollout settles `needed=1`, so the search's usual question
    ("MC > 0?") often costs one or two rollouts instead of k. The state keeps what
    was drawn; `estimate` completes it to k if its MC becomes a label."""
    wave = cfg.wave or cfg.k
    while True:
        right, drawn = sum(r.correct for r in state.rollouts), len(state.rollouts)
        if state.mc is not None and not state.rollouts:  # given without rollouts
            return state.mc * cfg.k >= needed
        if right >= needed:
            return True
        if right + cfg.k - drawn < needed or (drawn and tree.rollouts >= cfg.rollout_budget):
            return False  # settled, or out of budget with too few right
        yield from draw(tree, state, problem, grader, cfg, min(wave, cfg.k - drawn))


def sequential_test(tree: Tree, state: State, problem: Problem, grader: Grader, cfg: AnnotateConfig, p1: float,
                    p0: float, ) -> Generator[MCQuery, list[Continuation], bool]:
    """Whether the state's MC is nearer `p1` than `p0`: Wald's sequential probability ratio
    test, drawing in waves until the evidence crosses a boundary set by `cfg.decision_error`
    (the chance of either mistake), or up to `cfg.decision_max` rollouts or the end of the
    problem's budget, where the likelier side wins. Clear cases settle in a few rollouts,
    close ones take more. With p0 = 0 one right rollout settles it for p1 (a state at MC 0
    never draws one), and failures alone for p0 once a state at p1 would rarely show them all."""
    wave = cfg.wave or cfg.k
    bound = math.log((1 - cfg.decision_error) / cfg.decision_error)
    per_right = math.log(p1 / p0) if p0 > 0 else math.inf
    per_wrong = math.log((1 - p1) / (1 - p0)) if p1 < 1 else -math.inf
    while True:
        if state.mc is not None and not state.rollouts:  # given without rollouts
            return state.mc >= (p0 + p1) / 2
        right, drawn = sum(r.correct for r in state.rollouts), len(state.rollouts)
        evidence = (right * per_right if right else 0.0) + ((drawn - right) * per_wrong if drawn > right else 0.0)
        if abs(evidence) >= bound or drawn >= cfg.decision_max or (drawn and tree.rollouts >= cfg.rollout_budget):
            return evidence > 0  # settled, at the cap, or out of budget: the likelier side
        yield from draw(tree, state, problem, grader, cfg, min(wave, cfg.decision_max - drawn))


def draw(tree: Tree, state: State, problem: Problem, grader: Grader, cfg: AnnotateConfig, n: int,
         ) -> Generator[MCQuery, list[Continuation], None]:
    """n more rollouts from the state's prefix; the first draw of a state has the seed a
    full estimate always had, later ones a seed of their own."""
    drawn = len(state.rollouts)
    seed = derive_seed(cfg.seed, problem.id, *state.steps) if drawn == 0 else \
        derive_seed(cfg.seed, problem.id, "more", drawn, *state.steps)
    continuations = yield MCQuery(list(state.steps), n, seed)
    for c in continuations:
        state.rollouts.append(Rollout(c.steps, c.answer, grader.is_correct(problem, c.answer),
                                      c.completion_tokens))
        tree.tokens += c.completion_tokens
    tree.rollouts += len(continuations)
    state.mc = sum(r.correct for r in state.rollouts) / max(1, len(state.rollouts))


def per_step_mc(problem: Problem, grader: Grader, cfg: AnnotateConfig) -> Annotation:
    """Math-Shepherd: sample solutions, then label each step with the MC of
    the prefix ending there; after the first zero every later step is 0. The
    last step's label is the solution's own correctness."""
    tree = Tree(problem.id)
    root = tree.insert([])
    root_cfg = AnnotateConfig(**{**cfg.__dict__, "k": cfg.num_solutions})
    yield from estimate(tree, root, problem, grader, root_cfg)
    paths: list[AnnotatedPath] = []
    seen: set[tuple[str, ...]] = set()
    for solution in root.rollouts:
        if not solution.steps or tuple(solution.steps) in seen:
            continue
        seen.add(tuple(solution.steps))
        labels: list[float] = []
        counts: list = [state_counts(root)]
        for i in range(1, len(solution.steps)):
            if labels and labels[-1] == 0.0 or tree.rollouts >= cfg.rollout_budget:
                break
            state = tree.insert(solution.steps[:i])
            labels.append((yield from estimate(tree, state, problem, grader, cfg)))
            counts.append(state_counts(state))
        if len(labels) < len(solution.steps) - 1:  # stopped early: the rest is 0 (or unlabelled)
            if not labels or labels[-1] != 0.0:
                continue  # out of budget before a zero: leave this solution unlabelled
            counts += [None] * (len(solution.steps) - len(labels))
            labels += [0.0] * (len(solution.steps) - len(labels))
        else:
            labels.append(1.0 if solution.correct else 0.0)
            counts.append([int(solution.correct), 1])
        paths.append(AnnotatedPath.of(problem, solution.steps, labels,
                                      hard_labels=[v > 0 for v in labels], mc_counts=counts))
    return tree, paths
