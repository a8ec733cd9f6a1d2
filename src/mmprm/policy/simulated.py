"""A simulated policy whose mistakes are known, for tests and benchmarks.

Step j of a solution goes wrong with probability `error[j]`; a solution with
a wrong step reaches a wrong answer (unless `lucky` says it stumbles on the
right one). Steps read "step j: ok" or "step j: slip", so the true first
wrong step of any solution can be read off it; with `words=W` each step also
carries one of W words ("step j: w17" or "step j: w17 slip"), so two samples
rarely share a step's text, as real solutions do not. Samples depend only on the
request's seed, the prefix and the sample index, never on batching.
"""

from __future__ import annotations

import random
import time

from mmprm.policy.base import Continuation, Policy, Request, SamplingParams
from mmprm.seeds import derive_seed

SLIP = "slip"


def true_first_error(steps: list[str]) -> int | None:
    return next((i for i, s in enumerate(steps) if s.endswith(SLIP)), None)


class SimulatedPolicy(Policy):
    name = "simulated"

    def __init__(self, steps: int = 6, error: float | list[float] = 0.1, lucky: float = 0.0,
                 delay: float = 0.0, tokens_per_step: int = 8, words: int = 0):
        self.steps, self.words = steps, words
        self.error = error
        self.lucky = lucky
        self.delay = delay
        self.tokens_per_step = tokens_per_step
        self.name = f"sim:steps={steps},error={error},lucky={lucky},tokens_per_step={tokens_per_step}" + \
            (f",words={words}" if words else "")

    @classmethod
    def from_spec(cls, options: str) -> SimulatedPolicy:
        """`steps=6,error=0.1,lucky=0,delay=0,words=0` (error may be `0.05/0.1/0.3` per step)."""
        kwargs: dict = {}
        for item in filter(None, options.split(",")):
            key, _, value = item.partition("=")
            if key == "error" and "/" in value:
                kwargs[key] = [float(v) for v in value.split("/")]
            elif key in ("steps", "tokens_per_step", "words"):
                kwargs[key] = int(value)
            elif key in ("error", "lucky", "delay"):
                kwargs[key] = float(value)
            else:
                raise ValueError(f"unknown simulated-policy option {key!r}")
        return cls(**kwargs)

    def _p(self, j: int) -> float:
        if isinstance(self.error, list):
            return self.error[min(j, len(self.error) - 1)]
        return self.error

    def _one(self, request: Request, index: int, params: SamplingParams) -> Continuation:
        problem, prefix = request.problem, request.prefix_steps
        base = request.seed if request.seed is not None else params.seed
        rng = random.Random(derive_seed(base, problem.id, index, *prefix))
        length = int(problem.meta.get("n_steps", self.steps))
        wrong = true_first_error(prefix) is not None
        steps = []
        for j in range(len(prefix), length):
            slip = rng.random() < self._p(j)
            wrong |= slip
            if self.words:
                steps.append(f"step {j + 1}: w{rng.randrange(self.words)}" + (f" {SLIP}" if slip else ""))
            else:
                steps.append(f"step {j + 1}: {SLIP if slip else 'ok'}")
        answer = problem.answer
        if wrong and rng.random() >= self.lucky:
            answer = str(int(answer) + rng.randint(1, 9)) if answer.lstrip("-").isdigit() else f"{answer}-wrong"
        text = "".join(f"<step>{s}</step>" for s in steps) + f"<answer>{answer}</answer>"
        return Continuation(text, steps, answer, True, 16, self.tokens_per_step * (len(steps) + 1))

    def sample_batch(self, requests: list[Request], params: SamplingParams) -> list[list[Continuation]]:
        if self.delay:
            time.sleep(self.delay)
        return [[self._one(r, i, params) for i in range(params.n)] for r in requests]
