"""The critic interface: a solution's critique (its first error and a correction), or
None where the critic gives no verdict. Search receives a Critic and never builds one.

`load_critic(spec)`: `oracle` (the simulated teacher without noise: the generator's
ground truth, a ceiling no user has), `sim:NOISE` (the simulated teacher with noise: a
stand-in for a teacher model), `chat:URL#MODEL` (a model behind an OpenAI-compatible
chat API used as the critic, read in the prose layout), `hf:PATH` (a critic trained by
`mmprm critic train`: it also gives each step's P(correct)).
"""

from __future__ import annotations

from dataclasses import dataclass

from mmprm.critic.critique import Critique, ParsedCritique, parse
from mmprm.critic.verdicts import from_token_logprobs, per_step
from mmprm.types import Problem

SPEC_HELP = ("oracle (ground truth: a ceiling), sim:NOISE (the simulated teacher), chat:URL#MODEL, "
             "or hf:PATH[?samples=N] (a critic trained by `mmprm critic train`; N critiques a solution, "
             "averaged)")


@dataclass
class Review:
    """A critic's answer about one solution: its text, what the parser made of it, each step's
    P(correct) where the critic gives probabilities (None: it does not), and the tokens it wrote."""

    text: str | None
    parsed: ParsedCritique
    step_correct: list[float] | None = None
    completion_tokens: int = 0

    @property
    def critique(self) -> Critique | None:
        return self.parsed.critique


class Critic:
    name: str = "critic"

    def review_many(self, items: list[tuple[Problem, list[str]]]) -> list[Review]:
        """Reviews of several (problem, steps) solutions; backends batch them."""
        raise NotImplementedError

    def critique(self, problem: Problem, steps: list[str]) -> Critique | None:
        return self.review_many([(problem, steps)])[0].critique

    def close(self) -> None:
        """Release clients the critic holds."""


class TeacherCritic(Critic):
    """A teacher's text read by the critique parser (text that does not parse: no verdict);
    where the teacher's server returns token logprobs, its verdicts' probabilities too."""

    def __init__(self, teacher, layout: str, name: str | None = None):
        self.teacher, self.layout = teacher, layout
        self.name = name or teacher.name

    def review_many(self, items: list[tuple[Problem, list[str]]]) -> list[Review]:
        reviews = []
        for problem, steps in items:
            answer = self.teacher.answer(problem, steps)
            if answer.text is None:
                reviews.append(Review(None, ParsedCritique(None, "the teacher wrote nothing")))
                continue
            tokens = answer.token_logprobs
            odds = from_token_logprobs(answer.text, tokens, self.layout) if tokens else None
            reviews.append(Review(answer.text, parse(answer.text, len(steps), self.layout),
                                  None if odds is None else per_step(odds, len(steps)), answer.completion_tokens))
        return reviews

    def close(self) -> None:
        if hasattr(self.teacher, "close"):
            self.teacher.close()


def _samples(spec: str, query: str) -> int:
    """`samples=N` from a spec's query (1 without one)."""
    if not query:
        return 1
    key, _, value = query.partition("=")
    if key != "samples" or not value.isdigit() or int(value) < 1:
        raise ValueError(f"critic spec {spec!r}: the only option is samples=N with N at least 1, got {query!r}")
    return int(value)


def load_critic(spec: str, *, device: str = "cpu") -> Critic:
    from mmprm.critic.teacher import ChatTeacher, SimulatedTeacher

    if spec == "oracle":
        return TeacherCritic(SimulatedTeacher(0.0), "compact", name="ORACLE critic (the generator's ground truth)")
    kind, _, rest = spec.partition(":")
    if kind == "sim" and rest:
        try:
            noise = float(rest)
        except ValueError:
            raise ValueError(f"critic spec {spec!r}: the noise must be a number") from None
        return TeacherCritic(SimulatedTeacher(noise), "compact")
    if kind == "chat" and "#" in rest:
        url, _, model = rest.partition("#")
        return TeacherCritic(ChatTeacher(url, model, top_logprobs=5), "prose")
    if kind == "hf" and rest:
        from mmprm.critic.model import HFCritic

        path, _, query = rest.partition("?")
        return HFCritic(path, device=device, samples=_samples(spec, query))
    raise ValueError(f"critic spec {spec!r} is not {SPEC_HELP}")
