"""Step judges: verdicts on each step on its own (True right, False wrong, None
cannot tell), from something other than the policy's rollouts.

`OracleJudge` reads the synthetic generator's ground truth (`meta.objects`):
no real user has it, so it is only ever a ceiling, the `oracle` label source.
`ArithmeticJudge` checks "a op b = c" arithmetic with sympy, which needs no
ground truth but cannot judge a reading of a figure.
"""

from __future__ import annotations

import re

from mmprm.types import Problem, RecordError


class StepJudge:
    """Judges each step on its own: True (right), False (wrong) or None (cannot tell)."""

    def judge(self, problem: Problem, steps: list[str]) -> list[bool | None]:
        raise NotImplementedError


class OracleJudge(StepJudge):
    """The synthetic generator's ground truth (`meta.objects`): a ceiling, never a product label."""

    def judge(self, problem: Problem, steps: list[str]) -> list[bool | None]:
        from mmprm.data.synth import local_step_labels

        if not isinstance(problem.meta.get("objects"), dict):
            raise RecordError(f"problem {problem.id!r} has no ground truth (meta.objects): the oracle "
                              "labels only synthetic problems")

        return list(local_step_labels(problem, steps))


_NUM = r"\d+(?:\.\d+)?"
_OPS = "+-*/×÷^"
_EXPR = rf"\(*\s*{_NUM}\s*\)*(?:\s*[-+*/×÷^]\s*\(*\s*-?{_NUM}\s*\)*)*"
_EQUATION = re.compile(rf"(?<![\w.]){_EXPR}(?:\s*=\s*-?{_EXPR})+(?![\w.])")


class ArithmeticJudge(StepJudge):
    """Checks every "expr = expr" of plain arithmetic in a step with sympy. A step with
    none is None (algebra such as "x + 3 = 5" is not plain arithmetic); one with a
    false equation is False. A right-hand side written with k decimals is compared
    after rounding to k decimals ("10 / 3 = 3.33" is right)."""

    def judge(self, problem: Problem, steps: list[str]) -> list[bool | None]:
        return [self.check(s) for s in steps]

    def check(self, step: str) -> bool | None:
        found = []
        for m in _EQUATION.finditer(step):
            before, after = step[: m.start()].rstrip(), step[m.end():].lstrip()
            if (before and before[-1] in _OPS + "(=") or (after and after[0] in _OPS + "="):
                continue  # part of a larger expression with symbols in it
            if re.search(r"\^\s*\(*\s*\d{4,}", m.group(0)):
                continue  # a huge power: not worth evaluating
            found.append(m.group(0))
        if not found:
            return None
        return all(_holds(eq) for eq in found)


def _holds(equation: str) -> bool:
    import sympy

    parts = [_balance(p.strip()) for p in equation.split("=")]
    try:
        values = [_value(p) for p in parts]
    except (sympy.SympifyError, SyntaxError, TypeError, ZeroDivisionError):
        return False
    if any(v.has(sympy.zoo, sympy.nan) for v in values):
        return False
    for left, right, text in zip(values, values[1:], parts[1:]):
        decimals = len(text.rsplit(".", 1)[1]) if re.fullmatch(rf"-?{_NUM}", text) and "." in text else None
        if decimals is not None:
            if round(float(left), decimals) != round(float(right), decimals):
                return False
        elif sympy.simplify(left - right) != 0:
            return False
    return True


def _balance(text: str) -> str:
    """Drop parentheses the match cut in half: "(so 3 + 4 = 7)" yields "7)"."""
    while text.count(")") > text.count("(") and text.endswith(")"):
        text = text[:-1].rstrip()
    while text.count("(") > text.count(")") and text.startswith("("):
        text = text[1:].lstrip()
    return text


def _value(text: str):
    """Evaluate plain arithmetic exactly (decimals as rationals); the regex admits nothing else."""
    from sympy import Rational, sympify

    text = text.replace("×", "*").replace("÷", "/").replace("^", "**")
    text = re.sub(_NUM, lambda m: f"Rational('{m.group(0)}')", text)
    return sympify(text, locals={"Rational": Rational})
