"""A critic used as a PRM (`--prm critic:SPEC`): each step's score is the critic's P(correct).

A trained critic (`critic:PATH` or `critic:hf:PATH`) gives probabilities read from its
verdict tokens (`mmprm.critic.model`). A critic that gives only text (`critic:oracle`,
`critic:sim:NOISE`, `critic:chat:URL#MODEL`) is scored from its verdicts: 1 for a step it
passes, 0 from its first error on, and 0.5 for every step when it gives no verdict. The
critique text goes with the scores (`explain_many`), so the scored file and the HTML report
show why each candidate was scored as it was. Best-of-N, weighted voting, beam search,
`mmprm evaluate` and `mmprm evaluate-steps` use it as they use any PRM.
"""

from __future__ import annotations

from pathlib import Path

from mmprm.critic.base import Critic, Review, load_critic
from mmprm.prm.base import PRM
from mmprm.types import Problem

NO_VERDICT = 0.5


class CriticPRM(PRM):
    bounded = True

    def __init__(self, critic: Critic):
        self.critic = critic
        self.name = f"critic-prm:{critic.name}"

    @classmethod
    def from_spec(cls, spec: str, *, device: str | None = None) -> CriticPRM:
        """`PATH[?samples=N]` (a trained critic folder) or any critic spec (`mmprm.critic.base.load_critic`)."""
        if Path(spec.partition("?")[0]).is_dir():
            spec = f"hf:{spec}"
        return cls(load_critic(spec, device=device or "cpu"))

    def score(self, problem: Problem, candidates: list[list[str]]) -> list[list[float]]:
        return self.score_many([(problem, candidates)])[0]

    def score_many(self, items: list[tuple[Problem, list[list[str]]]]) -> list[list[list[float]]]:
        return self.explain_many(items)[0]

    def explain_many(self, items: list[tuple[Problem, list[list[str]]]]
                     ) -> tuple[list[list[list[float]]], list[list[str | None]]]:
        flat = [(problem, steps) for problem, candidates in items for steps in candidates]
        reviews = iter(self.critic.review_many(flat))
        scores, notes = [], []
        for _, candidates in items:
            mine = [next(reviews) for _ in candidates]
            scores.append([step_scores(r, len(steps)) for r, steps in zip(mine, candidates)])
            notes.append([r.text for r in mine])
        return scores, notes

    def close(self) -> None:
        self.critic.close()


def step_scores(review: Review, n_steps: int) -> list[float]:
    if review.step_correct is not None:
        return list(review.step_correct)
    critique = review.critique
    if critique is None:
        return [NO_VERDICT] * n_steps
    first = n_steps if critique.first_error is None else critique.first_error
    return [1.0] * first + [0.0] * (n_steps - first)
