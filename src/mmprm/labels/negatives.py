"""Final-step negatives made from right paths: the same path with its stated result changed.

Why: first-error labels reach a final step only where every step before it was found
right, and a policy that reads the figure right seldom then slips in the last step, so a
PRM trained on them sees few wrong final steps (70 negatives among 342 final steps in the
default demo) and learns to pass any final arithmetic ("8 + 2 = 8" scores 0.95). A path
whose labels call every step right, and whose last number the grader accepts as the
answer, becomes a negative when that number is changed to one the grader rejects: the
steps before it are unchanged and still right, so its last step is the first error.

This needs what MC labels need, the reference answer and the grader, and no step
checker. It assumes the last number of the last step is the solution's answer, and
checks only that the grader accepts it before the change and rejects it after: an
answer stated elsewhere (a box before the arithmetic) is not re-read. The replacement
numbers are generic: the result one or two off, or a number the solution stated earlier
(a copied operand).

Measured on the default demo, it hurts both the PRM and the critic (docs/results.md); it is
off by default and kept to reproduce those figures.
"""

from __future__ import annotations

import random
import re

from mmprm.grading import Grader
from mmprm.labels.sources import LabelledPath
from mmprm.seeds import derive_seed
from mmprm.types import Problem

# a number standing alone: "10", "-3", "2.5", "1,000"; a sentence's full stop after it is not a decimal point
_NUMBER = re.compile(r"(?<![\w.,])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\w|[.,]\d)")


def answer_negatives(paths: list[LabelledPath], grader: Grader, *, per_path: int = 1,
                     seed: int = 0) -> list[LabelledPath]:
    """Up to `per_path` negatives from each right path (every target known and at least
    0.5); the originals are not returned. For sources whose targets say right or wrong
    (not `advantage`, whose 0.5 is "no change")."""
    out: list[LabelledPath] = []
    for path in paths:
        if path.steps and all(t is not None and t >= 0.5 for t in path.targets):
            out += [LabelledPath(path.problem, path.steps[:-1] + [last], path.targets[:-1] + [0.0])
                    for last in changed_results(path.problem, path.steps, grader, per_path=per_path, seed=seed)]
    return out


def changed_results(problem: Problem, steps: list[str], grader: Grader, *, per_path: int = 1,
                    seed: int = 0) -> list[str]:
    """Up to `per_path` versions of the last step, each with its stated result (its last
    number) changed to one the grader rejects; none where that number is not an answer
    the grader accepts. Seeded by the problem and the steps."""
    if per_path < 0:
        raise ValueError(f"per_path must be at least 0, got {per_path}")
    found = list(_NUMBER.finditer(steps[-1])) if steps and per_path else []
    if not found or not grader.is_correct(problem, found[-1].group()):
        return []
    stated, last = found[-1], steps[-1]
    options = _replacements(stated.group(), steps[:-1] + [last[: stated.start()]])
    random.Random(derive_seed(seed, problem.id, *steps)).shuffle(options)
    changed: list[str] = []
    for value in options:
        if len(changed) == per_path:
            break
        if not grader.is_correct(problem, value):
            changed.append(last[: stated.start()] + value + last[stated.end() :])
    return changed


def _replacements(value: str, earlier: list[str]) -> list[str]:
    """Wrong results a solution could state: one or two off (integers), or a number it
    stated before; each once, never the value itself."""
    options: list[str] = []
    if re.fullmatch(r"-?\d+", value):  # grouped thousands are left to the earlier numbers
        options += [str(int(value) + d) for d in (-2, -1, 1, 2)]
    options += [m.group() for text in earlier for m in _NUMBER.finditer(text)]
    return [v for v in dict.fromkeys(options) if v != value]
