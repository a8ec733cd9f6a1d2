"""Training labels: prefix labels (is everything up to this step right?) or local
labels (is this step right on its own?).

Prefix labels are what an MC estimate measures and what MM-PRM trains on;
local labels trained the better tiny PRM (GUIDE.md). Local verdicts come from
a `StepJudge`: the generator's ground truth on synthetic problems, a sympy
check of "a op b = c" arithmetic elsewhere, or any judge a user plugs in. A
step a judge cannot decide is None and takes no part in the loss.

Paths come from AnnotatedPath files (labels as annotated), or from a
samples.jsonl of Solutions plus its problems.jsonl (labels from the judge;
prefix labels then chain the local verdicts: oracle prefix labels).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mmprm.io import load_records, resolve_image
from mmprm.types import AnnotatedPath, Problem, RecordError, Solution

LABEL_TYPES = ("prefix", "local")


@dataclass
class LabelledPath:
    """A solution to train on: its problem, steps, and one target in [0, 1] (or None) per step."""

    problem: Problem
    steps: list[str]
    targets: list[float | None]


class StepJudge:
    """Judges each step on its own: True (right), False (wrong) or None (cannot tell)."""

    def judge(self, problem: Problem, steps: list[str]) -> list[bool | None]:
        raise NotImplementedError


class SyntheticJudge(StepJudge):
    """The synthetic generator's ground truth (`meta.objects`)."""

    def judge(self, problem: Problem, steps: list[str]) -> list[bool | None]:
        from mmprm.data.synth import local_step_labels

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


def default_judge(problem: Problem) -> StepJudge:
    return SyntheticJudge() if isinstance(problem.meta.get("objects"), dict) else ArithmeticJudge()


def local_targets(problem: Problem, steps: list[str], judge: StepJudge | None = None) -> list[float | None]:
    verdicts = (judge or default_judge(problem)).judge(problem, steps)
    return [None if v is None else float(v) for v in verdicts]


def prefix_from_local(local: list[float | None]) -> list[float | None]:
    """Chain local verdicts: 0 once a step is wrong, unknown after an undecided step, else 1."""
    out, state = [], 1.0
    for v in local:
        if v == 0.0:
            state = 0.0
        elif v is None and state == 1.0:
            state = None
        out.append(state)
    return out


def load_labelled(
    data: str | Path | None = None, *, samples: str | Path | None = None, problems: str | Path | None = None,
    labels: str = "prefix", judge: StepJudge | None = None, dedupe: bool = True,
) -> list[LabelledPath]:
    """Training paths from an AnnotatedPath file (`data`) or a samples + problems pair."""
    if labels not in LABEL_TYPES:
        raise ValueError(f"labels must be one of {LABEL_TYPES}, got {labels!r}")
    if (data is None) == (samples is None):
        raise ValueError("give either data (annotated paths) or samples with problems")
    if data is not None:
        out = [_from_path(p, labels, judge) for p in _annotated(Path(data))]
    else:
        if problems is None:
            raise ValueError("samples need their problems file (--problems)")
        out = _from_samples(Path(samples), Path(problems), labels, judge)
    if dedupe:
        seen, unique = set(), []
        for p in out:
            key = (p.problem.id, tuple(p.steps))
            if key not in seen:
                seen.add(key)
                unique.append(p)
        out = unique
    return [p for p in out if p.steps and any(t is not None for t in p.targets)]


def _annotated(path: Path) -> list[AnnotatedPath]:
    if path.is_dir():
        path = path / "paths.jsonl"
    records = load_records(path, AnnotatedPath.from_dict)
    for rec in records:  # image paths are relative to the file; in memory they are absolute
        refs = []
        for ref in rec.images:
            try:
                found = resolve_image(ref, path.parent)
            except RecordError as e:
                raise RecordError(f"{path}: path {rec.id!r}: {e}") from None
            refs.append(ref if isinstance(found, bytes) else str(found))
        rec.images = refs
    return records


def _from_path(p: AnnotatedPath, labels: str, judge: StepJudge | None) -> LabelledPath:
    problem = Problem(p.id, p.question, p.answer or "", p.images, p.choices, p.source, p.meta)
    if labels == "prefix":
        return LabelledPath(problem, p.steps, list(p.labels))
    return LabelledPath(problem, p.steps, local_targets(problem, p.steps, judge))


def _from_samples(samples: Path, problems: Path, labels: str, judge: StepJudge | None) -> list[LabelledPath]:
    from mmprm.data import load_problems

    by_id = {p.id: p for p in load_problems(problems, strict=True)}
    out, missing = [], 0
    for sol in load_records(samples, Solution.from_dict):
        problem = by_id.get(sol.problem_id)
        if problem is None:
            missing += 1
            continue
        local = local_targets(problem, sol.steps, judge)
        out.append(LabelledPath(problem, sol.steps, local if labels == "local" else prefix_from_local(local)))
    if missing:
        print(f"{samples}: {missing} solutions skipped, their problems are not in {problems}")
    return out
