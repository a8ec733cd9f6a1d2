"""The PRM interface: per-step scores of candidate solutions.

Search and evaluation receive a PRM and never build one, so a trained
mmprm PRM, a published PRM, a likelihood baseline or a scripted scorer in a
test plug in the same way.
"""

from __future__ import annotations

from mmprm.types import Problem


class PRM:
    """Scores every step of each candidate step list of one problem.

    `score` returns, per candidate, one float per step. Scores are
    probabilities in [0, 1] for classifier PRMs, but may be any real number
    (logits, log-probabilities) for other scorers; `higher_is_better` is
    always true and `bounded` says whether they lie in [0, 1].
    """

    name: str = "prm"
    bounded: bool = True

    def score(self, problem: Problem, candidates: list[list[str]]) -> list[list[float]]:
        raise NotImplementedError

    def score_many(self, items: list[tuple[Problem, list[list[str]]]]) -> list[list[list[float]]]:
        """Several problems at once; backends may batch across problems."""
        return [self.score(problem, candidates) for problem, candidates in items]

    def explain_many(self, items: list[tuple[Problem, list[list[str]]]]
                     ) -> tuple[list[list[list[float]]], list[list[str | None]]]:
        """`score_many`, and for each candidate the text a generative PRM wrote to justify its
        scores (a critique), None for a PRM that writes none; reports show it beside the steps."""
        return self.score_many(items), [[None] * len(candidates) for _, candidates in items]

    def close(self) -> None:
        """Release models or clients the scorer holds."""
