"""Split model output into steps, and render steps back into text.

Three layouts are recognised, in this order: `<step>…</step>` tags with an
optional `<answer>…</answer>` (the reference policy's format), "Step k:"
prefixes, and blank-line paragraphs; text with none of them falls back to one
step per line. Output that uses no tags therefore still yields steps (the
reference pipeline produced empty trees in that case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STEP_OPEN, STEP_CLOSE = "<step>", "</step>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

_TAG = re.compile(r"<(/?)(step|answer)>", re.IGNORECASE)
_STEP_K = re.compile(r"(?im)^[ \t]*(?:[#*]+[ \t]*)?step[ \t]+\d+[ \t]*(?:\*\*)?[ \t]*[:.)][ \t]*(?:\*\*)?")
_BLANK = re.compile(r"\n[ \t]*\n+")


@dataclass
class ParsedOutput:
    """Steps of a model output and the text of its `<answer>` tag, if any."""

    steps: list[str]
    answer_text: str | None = None
    layout: str = "lines"


def parse_output(text: str) -> ParsedOutput:
    """Split a model's output (or a partial one, cut mid-step) into steps."""
    if _TAG.search(text):
        return _parse_tags(text)
    if len(_STEP_K.findall(text)) >= 1:
        parts = _STEP_K.split(text)
        steps = [p.strip() for p in parts if p.strip()]
        return ParsedOutput(steps, None, "step_k")
    paragraphs = [p.strip() for p in _BLANK.split(text) if p.strip()]
    if len(paragraphs) > 1:
        return ParsedOutput(paragraphs, None, "paragraphs")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return ParsedOutput(lines, None, "lines")


def split_steps(text: str) -> list[str]:
    return parse_output(text).steps


def _parse_tags(text: str) -> ParsedOutput:
    steps: list[str] = []
    answer: str | None = None
    pos = 0
    current: str | None = None  # the open tag's name, if inside one
    for m in _TAG.finditer(text):
        chunk = text[pos : m.start()].strip()
        closing, name = m.group(1) == "/", m.group(2).lower()
        if current is None:
            if chunk:  # text outside any tag is kept, not dropped
                steps.append(chunk)
            if not closing:
                current = name
        else:
            if current == "answer":
                answer = chunk
            elif chunk:
                steps.append(chunk)
            # a new opening tag also closes an unclosed one
            current = None if closing else name
        pos = m.end()
    tail = text[pos:].strip()
    if current == "answer":
        answer = tail
    elif tail:
        steps.append(tail)
    return ParsedOutput(steps, answer, "tags")


def render_steps(
    steps: list[str], answer: str | None = None, *, style: str = "tags", open_last: bool = False
) -> str:
    """The inverse of `parse_output`: steps (and an answer) as text.

    `open_last` leaves the text ready for the next step to be generated
    (used when a policy continues a partial solution).
    """
    if style == "tags":
        body = "".join(f"{STEP_OPEN}{s}{STEP_CLOSE}\n" for s in steps)
        if answer is not None:
            body += f"{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
        return body
    if style == "step_k":
        body = "".join(f"Step {i}: {s}\n" for i, s in enumerate(steps, start=1))
        if answer is not None:
            body += f"The final answer is {answer}"
        elif open_last:
            body += f"Step {len(steps) + 1}:"
        return body
    if style == "paragraphs":
        parts = list(steps) + ([f"The final answer is {answer}"] if answer is not None else [])
        return "\n\n".join(parts) + ("\n\n" if open_last and parts else "")
    raise ValueError(f"unknown step style {style!r} (tags, step_k, paragraphs)")
