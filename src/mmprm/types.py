"""The shared vocabulary of every stage: Problem, Solution, AnnotatedPath.

Each record is one JSON object per line (see docs/formats.md). `from_dict`
validates and raises `RecordError` with a reason a user can act on; the
reader in `mmprm.io` adds the file and line.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any


class RecordError(ValueError):
    """A record that cannot be used, with the reason why."""


def _require(d: dict, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if key not in d or d[key] is None:
        raise RecordError(f"missing field '{key}' ({what})")
    value = d[key]
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind):
        raise RecordError(f"field '{key}' must be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _optional(d: dict, key: str, kind: type | tuple[type, ...]) -> Any:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind):
        raise RecordError(f"field '{key}' must be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _string_list(d: dict, key: str, *, required: bool) -> list[str] | None:
    value = _require(d, key, list, "a list of strings") if required else _optional(d, key, list)
    if value is None:
        return None
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise RecordError(f"field '{key}[{i}]' must be a string, got {type(item).__name__}")
    return list(value)


def _within_limits(question: str | None = None, images: list[str] | None = None,
                   steps: list[str] | None = None) -> None:
    """Raise RecordError naming the limit (mmprm.limits) a record goes past."""
    from mmprm.limits import limits, over_limit

    lim = limits()
    reasons = []
    if question is not None:
        reasons.append(over_limit("the question's length", len(question), lim.max_question_chars,
                                  "max_question_chars"))
    if images is not None:
        reasons.append(over_limit("the number of images", len(images), lim.max_images, "max_images"))
    if steps is not None:
        reasons.append(over_limit("the number of steps", len(steps), lim.max_solution_steps, "max_solution_steps"))
        longest = max((len(s) for s in steps), default=0)
        reasons.append(over_limit("the longest step's length", longest, lim.max_step_chars, "max_step_chars"))
    reason = next((r for r in reasons if r), None)
    if reason:
        raise RecordError(reason)


def _answer_text(d: dict, key: str = "answer") -> str:
    """Answers may arrive as numbers in third-party files; store them as text."""
    value = _require(d, key, (str, int, float), "the reference answer")
    text = str(value).strip()
    if not text:
        raise RecordError(f"empty '{key}'")
    return text


class _Record:
    """What every record type shares: written as JSON without its unset (None) fields."""

    def to_dict(self) -> dict:
        return _drop_none(asdict(self))


@dataclass
class Problem(_Record):
    """A question with zero or more images and a verifiable reference answer.

    `images` are paths relative to the JSONL file that holds the record, or
    `data:` URIs. `choices` is the list of option texts of a multiple-choice
    question, in letter order (A, B, ...).
    """

    id: str
    question: str
    answer: str
    images: list[str] = field(default_factory=list)
    choices: list[str] | None = None
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> Problem:
        if not isinstance(d, dict):
            raise RecordError(f"expected a JSON object, got {type(d).__name__}")
        pid = _require(d, "id", (str, int), "a unique problem id")
        question = _require(d, "question", str, "the question text")
        if not question.strip():
            raise RecordError("empty 'question'")
        images = _string_list(d, "images", required=False) or []
        _within_limits(question=question, images=images)
        return cls(
            id=str(pid),
            question=question,
            answer=_answer_text(d),
            images=images,
            choices=_string_list(d, "choices", required=False),
            source=_optional(d, "source", str),
            meta=_optional(d, "meta", dict) or {},
        )


@dataclass
class Solution(_Record):
    """One candidate solution of a problem, split into steps.

    `answer` is the extracted final answer (None when none was found);
    `correct` is set once graded; `step_scores` once a PRM has scored it.
    """

    problem_id: str
    steps: list[str]
    answer: str | None = None
    correct: bool | None = None
    step_scores: list[float] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> Solution:
        if not isinstance(d, dict):
            raise RecordError(f"expected a JSON object, got {type(d).__name__}")
        steps = _string_list(d, "steps", required=True)
        _within_limits(steps=steps)
        scores = _optional(d, "step_scores", list)
        if scores is not None:
            if len(scores) != len(steps):
                raise RecordError(f"'step_scores' has {len(scores)} entries for {len(steps)} steps")
            for i, s in enumerate(scores):
                if not isinstance(s, (int, float)) or isinstance(s, bool) or not math.isfinite(s):
                    raise RecordError(f"'step_scores[{i}]' must be a finite number, got {s!r}")
        answer = _optional(d, "answer", (str, int, float))
        return cls(
            problem_id=str(_require(d, "problem_id", (str, int), "the id of the problem it solves")),
            steps=steps,
            answer=None if answer is None else str(answer),
            correct=_optional(d, "correct", bool),
            step_scores=None if scores is None else [float(s) for s in scores],
            prompt_tokens=_optional(d, "prompt_tokens", int),
            completion_tokens=_optional(d, "completion_tokens", int),
            meta=_optional(d, "meta", dict) or {},
        )

@dataclass
class AnnotatedPath(_Record):
    """A PRM training example: a problem, a solution's steps, one label per step.

    `labels[i]` in [0, 1] is the soft label of step i (for MC annotation: the
    fraction of rollouts from the prefix ending at step i that reach the
    reference answer). `answer` may be None for sources that ship labelled
    steps without a reference answer (ProcessBench).
    """

    id: str
    question: str
    steps: list[str]
    labels: list[float]
    answer: str | None = None
    images: list[str] = field(default_factory=list)
    choices: list[str] | None = None
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> AnnotatedPath:
        if not isinstance(d, dict):
            raise RecordError(f"expected a JSON object, got {type(d).__name__}")
        steps = _string_list(d, "steps", required=True)
        if not steps:
            raise RecordError("'steps' is empty")
        labels = _require(d, "labels", list, "one label in [0, 1] per step")
        if len(labels) != len(steps):
            raise RecordError(f"'labels' has {len(labels)} entries for {len(steps)} steps")
        for i, v in enumerate(labels):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
                raise RecordError(f"'labels[{i}]' must be a number in [0, 1], got {v!r}")
        question = _require(d, "question", str, "the question text")
        images = _string_list(d, "images", required=False) or []
        _within_limits(question=question, images=images, steps=steps)
        return cls(
            id=str(_require(d, "id", (str, int), "the problem id")),
            question=question,
            steps=steps,
            labels=[float(v) for v in labels],
            answer=_answer_text(d) if d.get("answer") is not None else None,
            images=images,
            choices=_string_list(d, "choices", required=False),
            source=_optional(d, "source", str),
            meta=_optional(d, "meta", dict) or {},
        )

    @classmethod
    def of(cls, problem: Problem, steps: list[str], labels: list[float], **meta: Any) -> AnnotatedPath:
        return cls(
            id=problem.id,
            question=problem.question,
            steps=list(steps),
            labels=[float(v) for v in labels],
            answer=problem.answer,
            images=list(problem.images),
            choices=problem.choices,
            source=problem.source,
            meta={**problem.meta, **meta},
        )

    def problem(self, *, missing_answer: str | None = None) -> Problem:
        """The problem this path solves; a path without a reference answer
        (ProcessBench) needs `missing_answer` to stand in for it."""
        if self.answer is None and missing_answer is None:
            raise RecordError(f"annotated path {self.id!r} has no reference answer")
        names = {f.name for f in fields(Problem)}
        values = {k: v for k, v in asdict(self).items() if k in names}
        return Problem(**{**values, "answer": self.answer if self.answer is not None else missing_answer})

def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}
