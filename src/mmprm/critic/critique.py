"""GM-PRM's critique: one schema, one renderer and one parser per layout.

For each step up to the first wrong one, a critique states the step's
intent, its alignment with the figure, its logical soundness and a verdict;
then the first wrong step (or none) and a corrected version of it. Data,
training and scoring all go through `render` and `parse`, as the PRM schemes
go through `mmprm.prm.formats`, so a critic is never trained on one layout
and read with another.

Layouts: `compact`, short lines a tiny model can learn; `prose`, headed
paragraphs with boxed verdicts, for real VLMs and teacher models.

`parse` never raises: malformed, cut-off or contradictory text (a verdict
missing, a first error past the last step or not matching the verdicts, an
empty correction) gives a `ParsedCritique` with no critique and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LAYOUTS = ("compact", "prose")


@dataclass(frozen=True)
class StepReview:
    intent: str
    visual: str
    logic: str
    correct: bool


@dataclass(frozen=True)
class Critique:
    """Reviews of steps 1..m (m = the first wrong step, or every step), the first wrong
    step's index (0-based; None when every step is right) and its correction."""

    reviews: tuple[StepReview, ...]
    first_error: int | None
    correction: str | None = None

    def problem_with(self, n_steps: int) -> str | None:
        """Why this critique cannot be the verdict on a solution of `n_steps` steps, or None."""
        verdicts = [r.correct for r in self.reviews]
        if self.first_error is None:
            if len(verdicts) != n_steps:
                return f"no first error, but {len(verdicts)} of {n_steps} steps reviewed"
            if not all(verdicts):
                return "no first error, but a step is judged wrong"
            return None
        if not 0 <= self.first_error < n_steps:
            return f"first error {self.first_error + 1} is past the last step ({n_steps})"
        if len(verdicts) != self.first_error + 1:
            return f"first error {self.first_error + 1}, but {len(verdicts)} steps reviewed"
        if not all(verdicts[:-1]) or verdicts[-1]:
            return f"first error {self.first_error + 1} does not match the verdicts"
        if not (self.correction or "").strip():
            return "a first error without a correction"
        return None


@dataclass(frozen=True)
class ParsedCritique:
    """A critique read from text: `critique` is None (no verdict) when `reason` says why."""

    critique: Critique | None
    reason: str | None = None


def render(critique: Critique, layout: str = "compact") -> str:
    if layout == "compact":
        lines = [f"step {k}: {_flat(r.intent)} | {_flat(r.visual)} | {_flat(r.logic)} | "
                 f"{'right' if r.correct else 'wrong'}" for k, r in enumerate(critique.reviews, 1)]
        lines.append(f"first error: {'none' if critique.first_error is None else critique.first_error + 1}")
        if critique.first_error is not None:
            lines.append(f"correction: {_flat(critique.correction or '')}")
        return "\n".join(lines)
    if layout == "prose":
        parts = [f"Step {k}.\nIntent: {r.intent}\nAlignment with the figure: {r.visual}\nLogic: {r.logic}\n"
                 f"Verdict: \\boxed{{{'correct' if r.correct else 'incorrect'}}}"
                 for k, r in enumerate(critique.reviews, 1)]
        first = "none" if critique.first_error is None else str(critique.first_error + 1)
        parts.append(f"First incorrect step: {first}")
        if critique.first_error is not None:
            parts.append(f"Corrected step: {critique.correction}")
        return "\n\n".join(parts)
    raise ValueError(f"unknown critique layout {layout!r}; choose from {', '.join(LAYOUTS)}")


def parse(text: str, n_steps: int, layout: str = "compact") -> ParsedCritique:
    """The critique in `text` of a solution with `n_steps` steps, or why there is none."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown critique layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    try:
        critique, reason = (_parse_compact if layout == "compact" else _parse_prose)(text)
    except (ValueError, IndexError) as e:  # a number too large or a part missing: no verdict, said why
        return ParsedCritique(None, f"unreadable: {e}")
    if critique is None:
        return ParsedCritique(None, reason)
    problem = critique.problem_with(n_steps)
    return ParsedCritique(None, problem) if problem else ParsedCritique(critique)


# The words a layout's verdicts are written in (right step, wrong step): a critic's P(correct)
# for a step is read where its verdict is written, from these two alone.
VERDICT_WORDS = {"compact": ("right", "wrong"), "prose": ("correct", "incorrect")}
_VERDICT_AT = {"compact": re.compile(r"^step \d+:[^\n]*\| (right|wrong)[ \t]*$", re.I | re.M),
               "prose": re.compile(r"Verdict:\s*\\boxed\{\s*(correct|incorrect)\s*\}", re.I)}


def verdict_offsets(text: str, layout: str = "compact") -> list[int]:
    """Where each step verdict in `text` begins (a character offset), in order: the places a
    critic's P(correct) is read. Reviews after the first-error line are not verdicts."""
    end = (m.start() if (m := (_PROSE_FIRST if layout == "prose" else _COMPACT_FIRST_ANY).search(text))
           else len(text))
    return [m.start(1) for m in _VERDICT_AT[layout].finditer(text[:end])]


# ---- the layouts ------------------------------------------------------------------

_COMPACT_STEP = re.compile(r"^step (\d+): ([^|]*) \| ([^|]*) \| ([^|]*) \| (right|wrong)\s*$", re.I)
_COMPACT_FIRST = re.compile(r"^first error: (none|\d+)\s*$", re.I)
_COMPACT_FIRST_ANY = re.compile(r"^first error:", re.I | re.M)
_COMPACT_FIX = re.compile(r"^correction: ?(.*)$", re.I)


def _parse_compact(text: str) -> tuple[Critique | None, str | None]:
    reviews, first, correction, seen_first = [], None, None, False
    for line in (ln.strip() for ln in text.strip().splitlines()):
        if not line:
            continue
        if m := _COMPACT_STEP.match(line):
            if seen_first:
                return None, "a step review after the first error line"
            if int(m.group(1)) != len(reviews) + 1:
                return None, f"step {m.group(1)} reviewed out of order"
            reviews.append(StepReview(m.group(2).strip(), m.group(3).strip(), m.group(4).strip(),
                                      m.group(5).lower() == "right"))
        elif m := _COMPACT_FIRST.match(line):
            if seen_first:
                return None, "two first-error lines"
            seen_first = True
            first = None if m.group(1).lower() == "none" else int(m.group(1)) - 1
        elif (m := _COMPACT_FIX.match(line)) and seen_first:
            correction = m.group(1).strip()
        else:
            return None, f"unreadable line {line[:60]!r}"
    if not seen_first:
        return None, "no first-error line (cut off?)"
    return Critique(tuple(reviews), first, correction), None


_PROSE_STEP = re.compile(r"Step (\d+)\.\s*\n\s*Intent:(.*?)\n\s*Alignment with the figure:(.*?)\n\s*Logic:(.*?)\n"
                         r"\s*Verdict:\s*\\boxed\{\s*(correct|incorrect)\s*\}", re.S | re.I)
_PROSE_FIRST = re.compile(r"First incorrect step:\s*(none|\d+)", re.I)
_PROSE_FIX = re.compile(r"Corrected step:(.*)\Z", re.S | re.I)


def _parse_prose(text: str) -> tuple[Critique | None, str | None]:
    reviews_part = text[: m.start()] if (m := _PROSE_FIRST.search(text)) else text  # a correction may read "Step 2."
    blocks = list(_PROSE_STEP.finditer(reviews_part))
    headed = re.findall(r"^\s*Step (\d+)\.", reviews_part, re.M)
    if len(headed) != len(blocks):
        return None, f"{len(headed)} step headings but {len(blocks)} complete reviews (a verdict missing?)"
    reviews = []
    for k, m in enumerate(blocks, 1):
        if int(m.group(1)) != k:
            return None, f"step {m.group(1)} reviewed out of order"
        reviews.append(StepReview(m.group(2).strip(), m.group(3).strip(), m.group(4).strip(),
                                  m.group(5).lower() == "correct"))
    firsts = _PROSE_FIRST.findall(text)
    if len(firsts) != 1:
        return None, "no first-incorrect-step line (cut off?)" if not firsts else "two first-incorrect-step lines"
    first = None if firsts[0].lower() == "none" else int(firsts[0]) - 1
    fix = _PROSE_FIX.search(text)
    return Critique(tuple(reviews), first, fix.group(1).strip() if fix else None), None


def _flat(text: str) -> str:
    """One line without the compact layout's separator, so a review renders and parses back."""
    return " ".join(text.replace("|", "/").split())
