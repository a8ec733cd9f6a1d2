"""Refined Best-of-N (GM-PRM): half the samples drawn as usual, the other half continued
from each one's corrected first error.

The policy samples `refine_share` of n solutions per problem; a critic reviews each;
where it finds a first error, the policy continues from the steps before it plus the
critic's corrected step (`correction=False`: the control, the same prefix without the
correction, to tell what the correction adds); a solution the critic passes, or gives no
verdict on, is answered by a fresh sample. Every candidate is scored by the PRM, and the
runner's selection rules pick one, as for Best-of-N. The policy's tokens and the critic's
are counted apart (`tokens`, `critic_tokens`), for comparisons at an equal budget.
"""

from __future__ import annotations

from dataclasses import replace

from mmprm.critic.base import Critic
from mmprm.policy.base import Policy, Request, SamplingParams
from mmprm.prm.base import PRM
from mmprm.search.tree_search import Candidate, SearchConfig, SearchResult
from mmprm.seeds import derive_seed, problem_seed
from mmprm.types import Problem


def refined_best_of_n(problems: list[Problem], policy: Policy, prm: PRM, cfg: SearchConfig, *,
                      critic: Critic) -> list[SearchResult]:
    first_n = min(cfg.n - 1, max(1, round(cfg.n * cfg.refine_share)))  # at least one of each half
    params = SamplingParams(n=first_n, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                            max_tokens=cfg.max_step_tokens * cfg.max_depth, seed=cfg.seed)
    first = policy.sample_batch([Request(p, seed=problem_seed(cfg.seed, p.id)) for p in problems], params)
    asked: dict[tuple[int, tuple[str, ...]], int] = {}  # a critic is asked once about the same solution
    for pi, conts in enumerate(first):
        for c in conts[: cfg.n - first_n]:  # the samples that get a refinement
            if c.steps:
                asked.setdefault((pi, tuple(c.steps)), len(asked))
    reviews = critic.review_many([(problems[pi], list(steps)) for pi, steps in asked]) if asked else []
    critic_tokens = [0] * len(problems)
    for (pi, _), k in asked.items():
        critic_tokens[pi] += reviews[k].completion_tokens
    requests, owners = [], []
    for pi, (problem, conts) in enumerate(zip(problems, first)):
        for j in range(cfg.n - first_n):  # the first samples' refinements, then fresh samples
            prefix: list[str] = []
            key = (pi, tuple(conts[j].steps)) if j < first_n else None
            review = reviews[asked[key]].critique if key in asked else None
            if review is not None and review.first_error is not None:
                kept = conts[j].steps[: review.first_error]
                prefix = kept + [review.correction] if cfg.correction else kept
            requests.append(Request(problem, prefix, seed=derive_seed(cfg.seed, problem.id, "refined", j)))
            owners.append((pi, prefix))
    second = policy.sample_batch(requests, replace(params, n=1)) if requests else []
    candidates = [[Candidate(c.steps, c.answer, finished=c.finished) for c in conts] for conts in first]
    tokens = [sum(c.completion_tokens for c in conts) for conts in first]
    for (pi, prefix), (cont,) in zip(owners, second):
        candidates[pi].append(Candidate(prefix + cont.steps, cont.answer, finished=cont.finished))
        tokens[pi] += cont.completion_tokens
    scores = prm.score_many([(p, [c.steps for c in cands]) for p, cands in zip(problems, candidates)])
    results = []
    for problem, cands, per, spent, reviewing in zip(problems, candidates, scores, tokens, critic_tokens):
        for c, s in zip(cands, per):
            c.step_scores = list(s)
        results.append(SearchResult(problem, cands, spent, reviewing))
    return results
