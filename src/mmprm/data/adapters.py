"""Adapters from published benchmark files to mmprm records.

Each adapter turns one raw record (a dict from the source's own JSON/JSONL
file, which users download themselves) into a Problem, or, for ProcessBench,
an AnnotatedPath. Image fields come back as references relative to the
source file; `mmprm.data.convert` resolves, checks and re-homes them.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Callable
from typing import Any

from mmprm.types import AnnotatedPath, Problem, RecordError

# "A: 12", "(B) 5 cm", "C. triangle" on their own lines, after "Choices:"
_CHOICE_LINE = re.compile(r"^\s*\(?([A-H])\)?\s*[:.)]\s*(.+?)\s*$")


def _field(raw: dict, *names: str) -> Any:
    for name in names:
        if raw.get(name) not in (None, ""):
            return raw[name]
    raise RecordError(f"missing field '{names[0]}'")


def _answer(raw: dict, *names: str) -> str:
    """A reference answer as text: a number as written, a list of parts joined by ", "
    (a multi-part answer), never the Python text of a list or an object."""
    value = _field(raw, *names)
    parts = value if isinstance(value, list) else [value]
    if not parts or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in parts):
        raise RecordError(f"field '{names[0]}' must be text, a number or a list of them, got {value!r:.60}")
    text = ", ".join(str(v).strip() for v in parts)
    if not text.strip(", "):
        raise RecordError(f"empty '{names[0]}'")
    return text


_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"BM")


def _image_ref(value: Any, what: str) -> str:
    """A path, a data URI, or bare base64 (as some exports embed images) as a reference."""
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{what} must be a path or base64 string")
    value = value.strip()
    if value.startswith("data:") or re.search(r"\.[A-Za-z]{2,5}$", value):
        return value
    try:
        head = base64.b64decode(value[:64], validate=True)
    except (binascii.Error, ValueError):
        return value
    return "data:image/png;base64," + value if head.startswith(_IMAGE_MAGIC) else value


def _choices_from_text(question: str) -> tuple[str, list[str] | None]:
    """Split "…\\nChoices:\\nA: x\\nB: y" into the stem and the option texts."""
    m = re.search(r"\n\s*(?:Choices|Options)\s*:?\s*\n", question, re.IGNORECASE)
    if not m:
        return question, None
    options: list[str] = []
    for line in question[m.end():].splitlines():
        cm = _CHOICE_LINE.match(line)
        if not cm:
            if line.strip():
                break
            continue
        if cm.group(1) != string.ascii_uppercase[len(options)]:
            break
        options.append(cm.group(2))
    if len(options) < 2:
        return question, None
    return question[: m.start()].rstrip(), options


def mathvision(raw: dict) -> Problem:
    """MATH-Vision (MATH-V) JSONL: id, question, options, answer, image, level, subject."""
    options = raw.get("options") or None
    return Problem(
        id=str(_field(raw, "id")),
        question=_field(raw, "question"),
        answer=_answer(raw, "answer"),
        images=[_image_ref(_field(raw, "image"), "field 'image'")],
        choices=[str(o) for o in options] if options else None,
        source="mathvision",
        meta={k: raw[k] for k in ("level", "subject", "solution") if raw.get(k) is not None},
    )


def mathvista(raw: dict) -> Problem:
    """MathVista testmini JSON (a dict keyed by pid, or a list): question,
    image, choices, answer, unit, precision, question_type, answer_type."""
    choices = raw.get("choices") or None
    return Problem(
        id=str(_field(raw, "pid", "id")),
        question=_field(raw, "question"),
        answer=_answer(raw, "answer"),
        images=[_image_ref(_field(raw, "image"), "field 'image'")],
        choices=[str(c) for c in choices] if choices else None,
        source="mathvista",
        meta={k: raw[k] for k in ("unit", "precision", "question_type", "answer_type", "query", "metadata")
              if raw.get(k) is not None},
    )


def mathverse(raw: dict) -> Problem:
    """MathVerse testmini JSON: sample_index, problem_version, question, image,
    answer, question_type; multiple-choice options live in the question text."""
    question, choices = _choices_from_text(_field(raw, "question"))
    images = [_image_ref(raw["image"], "field 'image'")] if raw.get("image") else []
    return Problem(
        id=str(_field(raw, "sample_index", "id")),
        question=question,
        answer=_answer(raw, "answer"),
        images=images,
        choices=choices if raw.get("question_type", "multi-choice") == "multi-choice" else None,
        source="mathverse",
        meta={k: raw[k] for k in ("problem_index", "problem_version", "question_type", "metadata")
              if raw.get(k) is not None},
    )


def olympiadbench(raw: dict) -> Problem:
    """OlympiadBench JSON: id, question (with <image_k> marks), context,
    final_answer (a list), unit, image_1…image_5 (paths or base64)."""
    final = _field(raw, "final_answer")
    answers = final if isinstance(final, list) else [final]
    if not answers or not str(answers[0]).strip():
        raise RecordError("empty 'final_answer'")
    question = _field(raw, "question")
    if raw.get("context"):
        question = f"{raw['context']}\n{question}"
    images = [_image_ref(raw[f"image_{k}"], f"field 'image_{k}'")
              for k in range(1, 10) if raw.get(f"image_{k}")]
    answer = ", ".join(str(a).strip().strip("$") for a in answers)
    return Problem(
        id=str(_field(raw, "id")),
        question=question,
        answer=answer,
        images=images,
        source="olympiadbench",
        meta={k: raw[k] for k in ("unit", "answer_type", "is_multiple_answer", "subfield", "subject", "error")
              if raw.get(k) is not None},
    )


def dynamath(raw: dict) -> Problem:
    """DynaMath sample_variant JSON: id, question, image, answer, answer_type
    ("multiple choice" options live in the question text)."""
    question, choices = _choices_from_text(_field(raw, "question"))
    multiple = str(raw.get("answer_type", "")).lower().startswith("multiple")
    return Problem(
        id=str(_field(raw, "id", "qid")),
        question=question if multiple else _field(raw, "question"),
        answer=_answer(raw, "answer", "ground_truth"),
        images=[_image_ref(_field(raw, "image"), "field 'image'")],
        choices=choices if multiple else None,
        source="dynamath",
        meta={k: raw[k] for k in ("answer_type", "subject", "knowledge_level") if raw.get(k) is not None},
    )


def mmk12(raw: dict) -> Problem:
    """MM-K12-style seed JSON, as MM-PRM's annotation reads it:
    id, question, correct_answer, image_path."""
    image = raw.get("image_path") or raw.get("image")
    return Problem(
        id=str(_field(raw, "id")),
        question=_field(raw, "question"),
        answer=_answer(raw, "correct_answer", "answer"),
        images=[_image_ref(image, "field 'image_path'")] if image else [],
        source="mm-k12",
    )


def processbench(raw: dict) -> AnnotatedPath:
    """ProcessBench: id, problem, steps, label (index of the earliest wrong
    step, -1 if none). Becomes an AnnotatedPath with prefix labels: 1 before
    the first error, 0 from it on. ProcessBench ships no reference answer."""
    steps = _field(raw, "steps")
    if not isinstance(steps, list) or not steps:
        raise RecordError("'steps' must be a non-empty list")
    label = _field(raw, "label")
    if not isinstance(label, int) or not -1 <= label < len(steps):
        raise RecordError(f"'label' must be -1 or a step index below {len(steps)}, got {label!r}")
    labels = [1.0 if label == -1 or i < label else 0.0 for i in range(len(steps))]
    return AnnotatedPath(
        id=str(_field(raw, "id")),
        question=_field(raw, "problem"),
        steps=[str(s) for s in steps],
        labels=labels,
        source="processbench",
        meta={"first_error": label, "generator": raw.get("generator"),
              "final_answer_correct": raw.get("final_answer_correct")},
    )


ADAPTERS: dict[str, Callable[[dict], Problem | AnnotatedPath]] = {
    "mathvision": mathvision,
    "mathvista": mathvista,
    "mathverse": mathverse,
    "olympiadbench": olympiadbench,
    "dynamath": dynamath,
    "mmk12": mmk12,
    "processbench": processbench,
}
