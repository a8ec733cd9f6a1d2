"""GM-PRM's filter: keep a teacher's critique only where its first error agrees with
Monte-Carlo estimation on the annotation tree.

MC says a step is still right when some rollout from its prefix reaches the
answer, so the MC first error is the first step whose prefix MC is 0. A zero
from fewer than `min_rollouts` rollouts is not trusted, and a critique whose
agreement would rest on one is not kept (not checked); a right rollout
proves its prefix whatever their number. The last step's count is the
solution's graded outcome on rollout paths, so it is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmprm.critic.critique import Critique
from mmprm.types import AnnotatedPath

UNCHECKED = "unchecked"


def mc_first_error(path: AnnotatedPath, min_rollouts: int = 2) -> int | None | str:
    """The first step whose prefix MC is 0, None when the solution is right, or UNCHECKED.

    A right rollout from a prefix proves it, and every shorter prefix, still on track, so
    only zeros need `min_rollouts`: the MC first error is the first trusted zero whose
    previous step is proven on track (the first step needs no proof). A prefix without a
    count (inside a multi-step edge) proves nothing either way."""
    counts = path.meta.get("mc_counts")
    if not isinstance(counts, list) or len(counts) != len(path.steps) + 1:
        return UNCHECKED
    last = len(path.steps) - 1
    on_track = [isinstance(c, list) and c[0] > 0 for c in counts[1:]]
    for j in range(len(path.steps)):
        c = counts[j + 1]
        if isinstance(c, list) and c[0] == 0 and (j == last or c[1] >= min_rollouts):
            return j if j == 0 or on_track[j - 1] else UNCHECKED
    return None if on_track[last] else UNCHECKED


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
                     layout: str = "compact", filtered: bool = True,
                     ) -> tuple[list[tuple[AnnotatedPath, Critique]], FilterReport]:
    """The (path, critique) pairs whose critique parses and agrees with MC (`filtered=False`:
    every one that parses), and what happened to the rest. A path without a critique (the
    teacher wrote none) is not counted."""
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
        report.unchecked += verdict == UNCHECKED
        if verdict is True or not filtered:
            report.kept += 1
            kept.append((path, parsed.critique))
    return kept, report
