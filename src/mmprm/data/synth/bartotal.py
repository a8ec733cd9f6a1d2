"""Bar chart totals: "what is the sum of all the bars?", read in order A, B, ...

The same figures as `bars`, but the question is the same for every problem,
so a solution depends on the figure alone: every reading is a chance to
misread and every running sum a chance to slip. This is the family the tiny
demo policy learns; `bars` asks for expressions over letters named in the
question, which a 1 M-parameter model fails to copy reliably.
"""

from __future__ import annotations

import random

from mmprm.data.synth import bars
from mmprm.data.synth.common import Candidate, compute, read

NAME = "bartotal"
QUESTION = "In the bar chart, what is the sum of all the bars?"


def build(rng: random.Random, n_steps: int) -> Candidate | None:
    """k bars give 2k - 1 steps; an even step count adds a constant at the end."""
    k = min(6, (n_steps + 1) // 2)
    letters = "ABCDEF"[:k]
    heights = [rng.randint(1, 12) for _ in letters]
    steps = [read(f"bar {c}", h) for c, h in zip(letters, heights)]
    total = heights[0]
    for h in heights[1:]:
        steps.append(compute(total, "+", h))
        total += h
    question = QUESTION
    if len(steps) < n_steps:
        c = rng.randint(1, 9)
        steps.append(compute(total, "+", c))
        question = QUESTION.replace("bars?", f"bars plus {c}?")
    if len(steps) != n_steps:
        return None
    return Candidate(family=NAME, task="total", question=question,
                     objects={f"bar {c}": h for c, h in zip(letters, heights)}, steps=steps,
                     figure={"heights": heights})


draw = bars.draw
