"""OmegaPRM (Luo et al. 2024), as MM-PRM uses it to label steps.

A candidate pool holds (state, incorrect rollout) pairs. Each search picks
the pair with the largest Q + U, Q = alpha^(1-MC) * beta^(len(r)/L) and
U = c_puct * sqrt(sum of visits) / (1 + N(state)), then binary-searches the
rollout for its first wrong step: a prefix with MC > 0 moves the search
right (and its incorrect rollouts join the pool), MC = 0 moves it left.
"""

from __future__ import annotations

import math

from mmprm.annotate.config import AnnotateConfig
from mmprm.annotate.mc import Annotation, estimate
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


def omegaprm(problem: Problem, grader: Grader, cfg: AnnotateConfig) -> Annotation:
    tree = Tree(problem.id)
    root = tree.insert([])
    root_mc = yield from estimate(tree, root, problem, grader, cfg)
    if root_mc in (0.0, 1.0):
        tree.skipped = f"root MC is {root_mc:g}"
        return tree, []
    pool: list[tuple[State, Rollout]] = [(root, r) for r in root.rollouts if not r.correct and r.steps]
    total_visits = 0
    while pool and tree.searches < cfg.max_searches and tree.rollouts < cfg.rollout_budget:
        state, rollout = pool.pop(select(pool, total_visits, cfg))
        state.visits += 1
        total_visits += 1
        tree.searches += 1
        # Invariant: state + rollout[:left] has MC > 0; the whole rollout is wrong.
        left, right = 0, len(rollout.steps)
        while right - left > 1 and tree.rollouts < cfg.rollout_budget:
            mid = (left + right) // 2
            child = tree.insert(state.steps + rollout.steps[:mid])
            fresh = child.mc is None
            mc = yield from estimate(tree, child, problem, grader, cfg)
            if mc > 0:
                left = mid
                if fresh:
                    pool.extend((child, r) for r in child.rollouts if not r.correct and r.steps)
            else:
                right = mid
        if right - left <= 1:
            tree.first_errors.append({"state": state.id, "first_error_step": len(state.steps) + left,
                                      "steps": state.steps + rollout.steps})
        # The wrong rollout's full path is a state with MC 0 (its answer is wrong).
        end = tree.insert(state.steps + rollout.steps[:right])
        if end.mc is None:
            end.mc = 0.0
    return tree, training_paths(tree, problem, cfg.paths, min_steps=cfg.min_path_steps,
                                limit=cfg.max_rollout_paths, seed=derive_seed(cfg.seed, problem.id, "paths"))
