"""Pull the final answer out of a model's text, and tidy it for comparison.

Order of preference: an `<answer>` tag, the last `\\boxed{}`, the last "the
(final) answer is …", then the last number. For multiple-choice problems a
bare letter ("(E)", "E.") is kept as the letter; `to_choice_letter` maps
answers and choice texts onto letters.
"""

from __future__ import annotations

import re
import string

_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.IGNORECASE | re.DOTALL)
_ANSWER_IS = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is|:|=)\s*[:\s]*(.+?)(?:\n|$)", re.IGNORECASE
)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_LETTER = re.compile(r"^\(?\s*([A-Z])\s*\)?[.:]?$")
_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3})((?:(?:\{,\}|,)\d{3})+)(?![\d])")


def all_boxed(text: str) -> list[str]:
    """Contents of every `\\boxed{...}` / `\\fbox{...}`, in order (several for a multi-part answer)."""
    out, end = [], len(text)
    while (found := last_boxed(text[:end])) is not None:
        out.append(found)
        end = max(text.rfind("\\boxed", 0, end), text.rfind("\\fbox", 0, end))
    return out[::-1]


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` or `\\fbox{...}`, braces balanced."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        # \boxed 5 (no braces)
        m = re.match(r"\\(?:boxed|fbox)\s+(\S+)", text[start:])
        return m.group(1) if m else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def normalize_answer(answer: str) -> str:
    """Strip wrappers that carry no meaning: $…$, a trailing period, thousands
    separators (`10{,}000`, `10,000`), `\\text{}` around a letter, spaces."""
    a = answer.strip()
    boxed = last_boxed(a)
    if boxed is not None:
        a = boxed.strip()
    a = a.rstrip(". ").strip("$ ").strip()
    a = re.sub(r"^\\\(|\\\)$", "", a).strip()
    a = re.sub(r"\\text\{\s*\(?([A-Za-z])\)?\s*\}", r"\1", a)
    a = re.sub(r"\\(?:mathrm|textbf|mathbf)\{([^{}]*)\}", r"\1", a)
    a = a.rstrip(".").strip()
    a = _THOUSANDS.sub(lambda m: m.group(1) + re.sub(r"\{,\}|,", "", m.group(2)), a)
    return a


def extract_answer(text: str, choices: list[str] | None = None) -> str | None:
    """The final answer of `text`, normalised; None when nothing answer-like is found."""
    if not text or not text.strip():
        return None
    candidate: str | None = None
    tags = _ANSWER_TAG.findall(text)
    if tags and tags[-1].strip():
        candidate = tags[-1]
    if candidate is None:
        candidate = last_boxed(text)
    if candidate is None:
        matches = _ANSWER_IS.findall(text)
        if matches:
            candidate = matches[-1]
    if candidate is not None:
        answer = normalize_answer(candidate)
        if choices:
            letter = _letter_in(answer, len(choices))
            if letter is not None:
                return letter
        return answer or None
    if choices:
        letters = re.findall(r"\(([A-Z])\)", text)
        valid = [x for x in letters if string.ascii_uppercase.index(x) < len(choices)]
        if valid:
            return valid[-1]
    numbers = _NUMBER.findall(_THOUSANDS.sub(lambda m: m.group(0).replace("{,}", ","), text))
    if numbers:
        return normalize_answer(numbers[-1])
    return None


def _letter_in(answer: str, n_choices: int) -> str | None:
    """'(E)', 'E', 'E.', 'E) 12' -> 'E' when E is a valid option letter."""
    m = _LETTER.match(answer) or re.match(r"^\(?([A-Z])\)\s", answer)
    if m and string.ascii_uppercase.index(m.group(1)) < n_choices:
        return m.group(1)
    return None


def to_choice_letter(answer: str, choices: list[str] | None) -> str | None:
    """The option letter an answer stands for: itself if a valid letter, or the
    letter of the choice whose text equals it after normalisation."""
    if not choices:
        return None
    a = normalize_answer(answer)
    letter = _letter_in(a, len(choices))
    if letter is not None:
        return letter
    key = _loose(a)
    for i, choice in enumerate(choices):
        if _loose(normalize_answer(choice)) == key:
            return string.ascii_uppercase[i]
    return None


def choice_text(letter: str, choices: list[str]) -> str:
    return choices[string.ascii_uppercase.index(letter)]


def _loose(s: str) -> str:
    return re.sub(r"\s+", "", s).lower()
