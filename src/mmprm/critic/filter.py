"""GM-PRM's filter: keep a teacher's critique only where its first error agrees with
Monte-Carlo estimation on the annotation tree.

MC says a step is still right when some rollout from its prefix reaches the
answer, so the MC first error is the first step whose prefix MC is 0. An
estimate from fewer than `min_rollouts` rollouts is not trusted: a critique
whose agreement would rest on one is not kept (not checked). The last
step's prefix is the whole solution, whose outcome is graded, not estimated,
so it is always trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmprm.critic.critique import Critique
from mmprm.types import AnnotatedPath

UNCHECKED = "unchecked"


def mc_first_error(path: AnnotatedPath, min_rollouts: int = 2) -> int | None | str:
    """The first step whose prefix MC is 0, None when no step's is, or UNCHECKED when a
    step before it has too few rollouts (or none) to tell."""
    counts = path.meta.get("mc_counts")
    if not isinstance(counts, list) or len(counts) != len(path.steps) + 1:
        return UNCHECKED
    last = len(path.steps) - 1
    for j in range(len(path.steps)):
        c = counts[j + 1]
        if c is None or (j < last and c[1] < min_rollouts):
            return UNCHECKED
        if c[0] == 0:
            return j
    return None


@dataclass
class FilterReport:
    critiques: int = 0
    unparsed: int = 0
    unchecked: int = 0
    kept: int = 0

    def to_dict(self) -> dict:
        return {"critiques": self.critiques, "unparsed": self.unparsed, "unchecked": self.unchecked,
                "kept": self.kept, "kept_share": round(self.kept / max(1, self.critiques), 3)}


def agrees_with_mc(critique: Critique | None, path: AnnotatedPath, min_rollouts: int = 2) -> bool | str:
    """True or False, or UNCHECKED where MC cannot tell; a critique that did not parse never agrees."""
    mc = mc_first_error(path, min_rollouts)
    if mc == UNCHECKED:
        return UNCHECKED
    return critique is not None and critique.first_error == mc


def filter_critiques(pairs: list[tuple[AnnotatedPath, str | None]], *, min_rollouts: int = 2,
                     layout: str = "compact") -> tuple[list[tuple[AnnotatedPath, Critique]], FilterReport]:
    """The (path, critique) pairs whose critique parses and agrees with MC, and what happened
    to the rest. A path without a critique (the teacher wrote none) is not counted."""
    from mmprm.critic.critique import parse

    report, kept = FilterReport(), []
    for path, text in pairs:
        if text is None:
            continue
        report.critiques += 1
        parsed = parse(text, len(path.steps), layout)
        if parsed.critique is None:
            report.unparsed += 1
            continue
        verdict = agrees_with_mc(parsed.critique, path, min_rollouts)
        if verdict == UNCHECKED:
            report.unchecked += 1
        elif verdict:
            report.kept += 1
            kept.append((path, parsed.critique))
    return kept, report
