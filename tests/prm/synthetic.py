"""Synthetic PRM data without a policy: reference solutions and corrupted copies.

Each corrupted copy changes the value of one reference step (a reading or a
result) to a wrong number, so `local_step_labels` marks exactly that step
wrong; a candidate is correct when every step is right.
"""

from __future__ import annotations

import random
import re

from mmprm.data.synth import local_step_labels
from mmprm.types import Problem

_LAST_NUMBER = re.compile(r"(\d+)(\D*)$")


def corrupt(step: str, rng: random.Random) -> str:
    """The step with its final number replaced by another in 0..99."""
    m = _LAST_NUMBER.search(step)
    value = int(m.group(1))
    wrong = rng.choice([v for v in range(100) if v != value])
    return step[: m.start(1)] + str(wrong) + m.group(2)


def candidates(problem: Problem, n_wrong: int, rng: random.Random, p_wrong: float = 0.3
               ) -> list[tuple[list[str], list[bool]]]:
    """The reference and `n_wrong` corrupted copies (each step wrong with probability
    `p_wrong`, at least one per copy), each with its local step labels."""
    ref = [s["text"] for s in problem.meta["reference_steps"]]
    out = [(ref, local_step_labels(problem, ref))]
    for _ in range(n_wrong):
        hit = [rng.random() < p_wrong for _ in ref]
        hit[rng.randrange(len(ref))] = True
        steps = [corrupt(s, rng) if h else s for s, h in zip(ref, hit)]
        out.append((steps, local_step_labels(problem, steps)))
    return out
