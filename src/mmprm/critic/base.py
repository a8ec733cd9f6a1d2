"""The critic interface: a solution's critique (its first error and a correction), or
None where the critic gives no verdict. Search receives a Critic and never builds one.

`load_critic(spec)`: `oracle` (the simulated teacher without noise: the generator's
ground truth, a ceiling no user has), `sim:NOISE` (the simulated teacher with noise: a
stand-in for a teacher model), `chat:URL#MODEL` (a model behind an OpenAI-compatible
chat API used as the critic, read in the prose layout).
"""

from __future__ import annotations

from mmprm.critic.critique import Critique, parse
from mmprm.types import Problem

SPEC_HELP = "oracle (ground truth: a ceiling), sim:NOISE (the simulated teacher) or chat:URL#MODEL"


class Critic:
    name: str = "critic"

    def critique(self, problem: Problem, steps: list[str]) -> Critique | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release clients the critic holds."""


class TeacherCritic(Critic):
    """A teacher's text read by the critique parser (text that does not parse: no verdict)."""

    def __init__(self, teacher, layout: str, name: str | None = None):
        self.teacher, self.layout = teacher, layout
        self.name = name or teacher.name

    def critique(self, problem: Problem, steps: list[str]) -> Critique | None:
        text = self.teacher.critique(problem, steps)
        return None if text is None else parse(text, len(steps), self.layout).critique

    def close(self) -> None:
        if hasattr(self.teacher, "close"):
            self.teacher.close()


def load_critic(spec: str) -> Critic:
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
        return TeacherCritic(ChatTeacher(url, model), "prose")
    raise ValueError(f"critic spec {spec!r} is not {SPEC_HELP}")
