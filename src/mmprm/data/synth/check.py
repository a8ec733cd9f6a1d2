"""Judge each step of a model's solution on its own ("local" labels).

A reading step "<object> is <n>" is right iff the figure's ground truth for
that object (meta.objects) is n; an arithmetic step "<a> <op> <b> = <c>" is
right iff it holds as written, whatever numbers it uses. Anything else is
wrong. These are the oracle's verdicts (mmprm.labels.judges.OracleJudge): a
ceiling for PRMs and the yardstick of evaluation, never a product label; the
first wrong step is where a solution first goes off the rails.
"""

from __future__ import annotations

import re
from fractions import Fraction

from mmprm.types import Problem

_ARITH = re.compile(r"^\s*(\d+(?:\s*[-+*x×/]\s*\d+)+)\s*=\s*(\d+)\s*\.?\s*$")
_READ = re.compile(r"^\s*(?:the\s+)?(.+?)\s+is\s+(\d+)\s*\.?\s*$", re.IGNORECASE)
_TOKEN = re.compile(r"\d+|[-+*x×/]")


def local_step_labels(problem: Problem, steps: list[str]) -> list[bool]:
    """One verdict per step: True when the step is right taken on its own."""
    objects = problem.meta.get("objects")
    if not isinstance(objects, dict):
        raise ValueError(f"problem {problem.id!r} has no meta.objects (not a synthetic problem?)")
    truth = {_norm(k): v for k, v in objects.items()}
    return [_judge(step, truth) for step in steps]


def first_wrong_step(problem: Problem, steps: list[str]) -> int | None:
    """Index (from 0) of the first wrong step, or None when every step is right."""
    for i, ok in enumerate(local_step_labels(problem, steps)):
        if not ok:
            return i
    return None


def corrected_step(problem: Problem, step: str) -> str | None:
    """The step made right: a reading with the figure's true value, arithmetic with the true
    result of its own left side; None for a step of neither kind. Ground truth: for the
    simulated critic teacher, never for a product label."""
    truth = {_norm(k): v for k, v in problem.meta.get("objects", {}).items()}
    if m := _ARITH.match(step):
        value = _evaluate(_TOKEN.findall(m.group(1)))
        if value is None or value.denominator != 1:
            return None
        return f"{m.group(1).strip()} = {value.numerator}"
    if (m := _READ.match(step)) and _norm(m.group(1)) in truth:
        return f"{m.group(1)} is {truth[_norm(m.group(1))]}"
    return None


def _judge(step: str, truth: dict[str, int]) -> bool:
    m = _ARITH.match(step)
    if m:
        value = _evaluate(_TOKEN.findall(m.group(1)))
        return value is not None and value == int(m.group(2))
    m = _READ.match(step)
    if m:
        name = _norm(m.group(1))
        return name in truth and truth[name] == int(m.group(2))
    return False


def _evaluate(tokens: list[str]) -> Fraction | None:
    """Integer arithmetic with the usual precedence; None on division by zero."""
    terms: list[Fraction] = [Fraction(int(tokens[0]))]
    signs: list[str] = []
    for op, num in zip(tokens[1::2], tokens[2::2]):
        v = Fraction(int(num))
        if op in "*x×":
            terms[-1] *= v
        elif op == "/":
            if v == 0:
                return None
            terms[-1] /= v
        else:
            signs.append(op)
            terms.append(v)
    total = terms[0]
    for op, v in zip(signs, terms[1:]):
        total = total + v if op == "+" else total - v
    return total


def _norm(name: str) -> str:
    return " ".join(name.lower().split())
