"""OmegaPRM (Luo et al. 2024), as MM-PRM uses it to label steps.

A candidate pool holds (state, incorrect rollout) pairs. Each search picks
the pair with the largest Q + U, Q = alpha^(1-MC) * beta^(len(r)/L) and
U = c_puct * sqrt(sum of visits) / (1 + N(state)), then binary-searches the
rollout for its first wrong step: a prefix still on track moves the search
right (and its incorrect rollouts join the pool), one off track moves it left.

"On track" is MM-PRM's MC > 0 by default (`decision=any`); `survival` asks
the prefix to keep a share of the searched state's MC, since a wrong prefix
still reaches the answer by luck or guessing; `floor` tells a right prefix's MC
at its depth from a small floor, which a wrong prefix keeps only by luck. With
`wave`, each question is answered by as few rollouts as settle it
(mc.on_track), and estimates that became labels are completed to k afterwards
(`complete_labels`, counted in `tree.label_rollouts`).

What a first error costs: a "wrong" verdict costs every rollout the test draws
before giving up, a "right" one about 1/MC. Two settings spend the rest where it
buys most. `fill_below`: where the root's MC is low, a wrong rollout is cheap
from any right state and its first error comes early, so prefixes found on track
are drawn up to k and their wrong rollouts (short, from deep states: few
decisions each) seed searches. `refill`: where the root's MC is high, a deep
state rarely yields a wrong rollout and the root is the cheapest source of
them, so when the pool runs dry more are drawn from the root.
"""

from __future__ import annotations

import math
from dataclasses import replace

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.mc import Annotation, draw, estimate, on_track, sequential_test
from mmprm.annotate.tree import Rollout, State, Tree, training_paths
from mmprm.grading import Grader
from mmprm.seeds import derive_seed
from mmprm.types import Problem


def _q(state: State, rollout: Rollout, cfg: AnnotateConfig) -> float:
    return cfg.alpha ** (1.0 - state.mc) * cfg.beta ** (rollout.tokens / cfg.length_scale)


def _u(state: State, total_visits: int, cfg: AnnotateConfig) -> float:
    return cfg.c_puct * math.sqrt(total_visits) / (1 + state.visits)


def select(pool: list[tuple[State, Rollout]], total_visits: int, cfg: AnnotateConfig) -> int:
    """The index of the (state, wrong rollout) pair with the largest Q + U: OmegaPRM's choice
    of where to binary-search next (the first such pair on a tie)."""
    return max(range(len(pool)), key=lambda i: _q(pool[i][0], pool[i][1], cfg) + _u(pool[i][0], total_visits, cfg))


def right_prefix_mc(root_mc: float, depth: int, steps: int) -> float:
    """The MC a prefix of `depth` right steps keeps on a path of `steps`: root MC ^ (steps
    left / steps), as if every step slipped alike. Near the end it is near 1, so a few
    failures there already say "wrong"."""
    return root_mc ** ((steps - depth) / steps) if steps > depth else 1.0


def still_on_track(tree: Tree, child: State, root_mc: float, problem: Problem, grader: Grader,
                   cfg: AnnotateConfig, steps: int = 0) -> Annotation:
    """The binary search's question about `child`, a prefix of a path of `steps` steps (0: unknown).
    `any`: one right rollout of k (MM-PRM's MC > 0), answered by as few rollouts as settle
    it. `survival`: is the prefix's MC nearer the root's (a prefix of right steps keeps at
    least that) than `survival` times it (where a wrong prefix's luck or guessing leaves
    it)? `floor`: is it nearer what a right prefix keeps at this depth than `floor`? A
    sequential test decides both; under `floor` the right side's MC rises along the path,
    so prefixes near the end settle in one or two rollouts either way."""
    if cfg.decision == "any":
        return (yield from on_track(tree, child, problem, grader, cfg, 1))
    if cfg.decision == "survival":
        return (yield from sequential_test(tree, child, problem, grader, cfg, root_mc, cfg.survival * root_mc))
    p1 = right_prefix_mc(root_mc, len(child.steps), steps) if steps else root_mc  # no length: the root's
    return (yield from sequential_test(tree, child, problem, grader, cfg, p1, min(cfg.floor, cfg.survival * p1)))


def trusted(state: State, root_mc: float, cfg: AnnotateConfig) -> bool:
    """Whether a state on track may seed searches of its own. Under `any`, always (MM-PRM),
    and under `floor` at floor 0, where a right rollout proves the prefix right. Otherwise
    a wrong state let in by luck would seed searches that all start past the true first
    error, so its rollouts must show `pool_survival` of the root's MC."""
    if cfg.decision == "any" or (cfg.decision == "floor" and cfg.floor == 0):
        return True
    return bool(state.rollouts) and sum(r.correct for r in state.rollouts) >= \
        cfg.pool_survival * root_mc * len(state.rollouts)


def omegaprm(problem: Problem, grader: Grader, cfg: AnnotateConfig) -> Annotation:
    tree = Tree(problem.id)
    root = tree.insert([])
    root_mc = yield from estimate(tree, root, problem, grader, replace(cfg, k=cfg.root_k or cfg.k))
    if root_mc in (0.0, 1.0):
        tree.skipped = f"root MC is {root_mc:g}"
        return tree, []
    pool: list[tuple[State, Rollout]] = [(root, r) for r in root.rollouts if not r.correct and r.steps]
    seeded = {root.id}  # states whose wrong rollouts went into the pool
    total_visits = 0
    while tree.searches < cfg.max_searches and tree.rollouts < cfg.rollout_budget:
        if not pool:  # nothing left to search: stop, or draw more wrong rollouts from the root
            if not cfg.refill:
                break
            drawn = len(root.rollouts)
            yield from draw(tree, root, problem, grader, cfg, min(cfg.refill, cfg.rollout_budget - tree.rollouts))
            pool.extend((root, r) for r in root.rollouts[drawn:] if not r.correct and r.steps)
            root_mc = root.mc  # the sharper estimate
            if root_mc in (0.0, 1.0):
                break
            continue
        state, rollout = pool.pop(select(pool, total_visits, cfg))
        state.visits += 1
        total_visits += 1
        tree.searches += 1
        # Invariant: state + rollout[:left] is on track; the whole rollout is wrong.
        left, right = 0, len(rollout.steps)
        while right - left > 1 and tree.rollouts < cfg.rollout_budget:
            mid = (left + right) // 2
            child = tree.insert(state.steps + rollout.steps[:mid])
            known = {id(r) for r in child.rollouts} if child.id in seeded else set()
            if (yield from still_on_track(tree, child, root_mc, problem, grader, cfg,
                                          len(state.steps) + len(rollout.steps))):
                more = min(cfg.k - len(child.rollouts), cfg.rollout_budget - tree.rollouts)
                if cfg.wave and root_mc <= cfg.fill_below and more > 0:  # on track: up to k, for seeds
                    yield from draw(tree, child, problem, grader, cfg, more)
                left = mid
                if trusted(child, root_mc, cfg):  # its wrong rollouts not yet in the pool join it
                    pool.extend((child, r) for r in child.rollouts
                                if not r.correct and r.steps and id(r) not in known)
                    seeded.add(child.id)
            else:
                right = mid
        blamed_unchecked = right == len(rollout.steps)  # the last step, blamed for the wrong answer alone
        if right - left <= 1 and (cfg.blame_last_step or not blamed_unchecked):
            tree.first_errors.append({"state": state.id, "first_error_step": len(state.steps) + left,
                                      "steps": state.steps + rollout.steps})
        # The wrong rollout's full path is a state with MC 0 (its answer is wrong); without the
        # blame, a full path no rollout checked is left out of the tree (it would be no label).
        if right < len(rollout.steps) or cfg.blame_last_step:
            end = tree.insert(state.steps + rollout.steps[:right])
            if end.mc is None:
                end.mc = 0.0
    if cfg.complete_labels:  # estimates that stopped early become k-rollout MC labels
        before = tree.rollouts
        for state in list(tree.states):
            if state.rollouts and len(state.rollouts) < cfg.k:
                yield from estimate(tree, state, problem, grader, cfg)
        tree.label_rollouts = tree.rollouts - before
    return tree, training_paths(tree, problem, cfg.paths, min_steps=cfg.min_path_steps,
                                limit=cfg.max_rollout_paths, seed=derive_seed(cfg.seed, problem.id, "paths"))
