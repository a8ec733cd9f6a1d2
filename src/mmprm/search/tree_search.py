"""PRM-guided step-level search: beam search, DVTS, and reward-guided greedy.

All three are one procedure over *groups* of beams. Each round, every live
beam samples `expand` next steps; the PRM scores the new partial solutions;
finished ones are set aside; in each group the best `keep` unfinished ones
live on. Groups belong to one problem and are never pooled across problems.

- beam:   1 group,  keep = width,  expand = n // width
- dvts:   n // width independent groups (diverse subtrees), keep 1, expand = width
- greedy: 1 group,  keep 1,  expand = n

The policy and the PRM are passed in; nothing here builds a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmprm.aggregate import AGGREGATIONS, aggregate
from mmprm.config import setting
from mmprm.policy.base import Policy, Request, SamplingParams
from mmprm.prm.base import PRM
from mmprm.seeds import derive_seed
from mmprm.steps import STEP_CLOSE
from mmprm.types import Problem

METHODS = ("beam", "dvts", "greedy")


@dataclass
class SearchConfig:
    """Settings of one search run; `method` is bon (whole solutions) or a step-level method."""

    method: str = setting("beam", "bon (whole solutions, scored once), refined (Refined-BoN: needs a critic) "
                          "or a step-level method", choices=("bon", "refined", *METHODS))
    n: int = setting(16, "samples per round per problem: the compute unit")
    width: int = setting(4, "beam width (beam) or expansions per subtree (dvts)")
    max_depth: int = setting(12, "rounds (steps) before unfinished beams are given up")
    aggregation: str = setting("last", "how a partial solution is ranked for pruning", choices=AGGREGATIONS)
    temperature: float = setting(0.8, "sampling temperature")
    top_p: float = setting(1.0, "nucleus sampling")
    top_k: int = setting(0, "top-k sampling (0: off)")
    max_step_tokens: int = setting(128, "tokens per step (bon: times max_depth per solution)")
    seed: int = setting(0, "sampling seed")
    refine_share: float = setting(0.5, "refined: the share of n sampled first; the rest continue from them")
    correction: bool = setting(True, "refined: continue from the critic's corrected step (off: the control, "
                               "the same prefix without the correction)")

    def __post_init__(self):
        if self.method not in ("bon", "refined", *METHODS):
            raise ValueError(f"unknown search method {self.method!r}; choose from bon, refined, {', '.join(METHODS)}")
        if not 0 < self.refine_share < 1:
            raise ValueError(f"refine_share must be in (0, 1), got {self.refine_share}")
        if self.method == "refined" and self.n < 2:
            raise ValueError(f"refined needs n of at least 2 (half sampled, half refined), got {self.n}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r}; choose from {', '.join(AGGREGATIONS)}")
        for name in ("n", "width", "max_depth", "max_step_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"search {name} must be at least 1, got {getattr(self, name)}")
        if self.method in ("beam", "dvts") and self.width > self.n:
            raise ValueError(f"{self.method}: width {self.width} is more than the {self.n} samples per round (n)")
        SamplingParams(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k).check()

    def shape(self) -> tuple[int, int, int]:
        """(groups, keep, expand) for the method."""
        if self.method == "beam":
            return 1, self.width, max(1, self.n // self.width)
        if self.method == "dvts":
            return max(1, self.n // self.width), 1, self.width
        if self.method == "greedy":
            return 1, 1, self.n
        raise ValueError(f"unknown search method {self.method!r}; choose from {', '.join(METHODS)}")


@dataclass
class Candidate:
    steps: list[str]
    answer: str | None = None
    step_scores: list[float] = field(default_factory=list)
    finished: bool = False
    value: float = float("-inf")


@dataclass
class SearchResult:
    problem: Problem
    candidates: list[Candidate]  # finished first, then beams cut off at max_depth
    tokens: int = 0  # the policy's completion tokens
    critic_tokens: int = 0  # Refined-BoN: the critic's, where it reports them


def step_search(problems: list[Problem], policy: Policy, prm: PRM, cfg: SearchConfig) -> list[SearchResult]:
    n_groups, keep, expand = cfg.shape()
    params = SamplingParams(n=expand, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                            max_tokens=cfg.max_step_tokens, stop=[STEP_CLOSE], seed=cfg.seed)
    results = [SearchResult(p, []) for p in problems]
    live: list[list[list[Candidate]]] = [[[Candidate([])] for _ in range(n_groups)] for _ in problems]
    for _ in range(cfg.max_depth):
        owners, requests = [], []
        for pi, groups in enumerate(live):
            for gi, beams in enumerate(groups):
                for bi, beam in enumerate(beams):
                    owners.append((pi, gi))
                    requests.append(Request(problems[pi], beam.steps,
                                            seed=derive_seed(cfg.seed, problems[pi].id, gi, bi, *beam.steps)))
        if not requests:
            break
        outputs = policy.sample_batch(requests, params)
        children: dict[tuple[int, int], list[Candidate]] = {}
        for (pi, gi), request, conts in zip(owners, requests, outputs):
            for c in conts:
                results[pi].tokens += c.completion_tokens
                if not c.steps and c.answer is None:
                    continue  # an empty continuation leads nowhere
                done = c.answer is not None and (c.finished or not c.steps)
                children.setdefault((pi, gi), []).append(
                    Candidate(request.prefix_steps + c.steps, c.answer if done else None, finished=done))
        _score(problems, prm, children, cfg)
        live = [[[] for _ in range(n_groups)] for _ in problems]
        for (pi, gi), kids in children.items():
            results[pi].candidates += [k for k in kids if k.finished]
            unfinished = sorted((k for k in kids if not k.finished), key=lambda k: -k.value)
            live[pi][gi] = unfinished[:keep]
    for pi, groups in enumerate(live):
        results[pi].candidates += [beam for beams in groups for beam in beams if beam.steps]
    return results


def _score(problems: list[Problem], prm: PRM, children: dict[tuple[int, int], list[Candidate]],
           cfg: SearchConfig) -> None:
    """Score every new candidate of every problem in one PRM call."""
    per_problem: dict[int, list[Candidate]] = {}
    for (pi, _), kids in children.items():
        per_problem.setdefault(pi, []).extend(k for k in kids if k.steps)
    order = sorted(per_problem)
    scores = prm.score_many([(problems[pi], [k.steps for k in per_problem[pi]]) for pi in order])
    for pi, problem_scores in zip(order, scores):
        for cand, s in zip(per_problem[pi], problem_scores):
            cand.step_scores = list(s)
            cand.value = aggregate(cand.step_scores, cfg.aggregation, bounded=prm.bounded)
